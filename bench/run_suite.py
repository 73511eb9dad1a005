#!/usr/bin/env python3
"""Runs a loraserve benchmark suite (bench/suites/*.json) end to end.

    bench/run_suite.py SUITE.json [--build-dir build] [--out results.json]
                       [--dry-run] [--peer | --no-peer] [--cache-dir DIR]

For each run of the suite: start build/server/loraserve on free ports, let
build/bench/loadgen/loraserve-loadgen register the adapter set through the
admin API and replay an S-LoRA synthetic trace (written to a file), stop the
server with SIGTERM (it must exit 0), then, when the suite asks for it and
torch + transformers + peft are importable, replay the same trace through the
Hugging Face reference peer (bench/peer/hf_peer.py). Prints one table per run,
loraserve next to the peer, and writes every report into one JSON (--out).

Models ({"synthetic": "llama-7b"}) and adapter sets are generated once with
loraserve-make-model / loraserve-make-adapters into --cache-dir, keyed by
their parameters. --dry-run validates the suite and prints the commands.

Exit status: 0 every run reported with no failed loraserve request and no
crash; 1 a request failed or a process crashed or timed out; 2 bad suite or
usage. Python standard library only (CI has no pip packages). No timing
assertions: numbers are printed, never judged.
"""

import argparse
import hashlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Flags the runner sets itself; a suite may not override them.
SERVER_OWNED = {"model", "port", "admin-port", "http-port", "host", "admin-host", "adapter-root",
                "lora-modules"}
LOADGEN_OWNED = {"addr", "admin-addr", "register-adapters", "num-adapters", "alpha", "rate", "cv",
                 "duration", "input-len", "output-len", "seed", "write-trace", "json", "trace",
                 "slo-ttft", "adapter-format"}
RUN_KEYS = {"name", "num_adapters", "alpha", "rate", "cv", "duration", "input_len", "output_len",
            "seed", "timeout_s", "peer"}
TOP_KEYS = {"name", "note", "model", "adapters", "server", "loadgen", "peer", "slo_ttft_s", "runs"}


class SuiteError(Exception):
    """A malformed suite; the message names the field."""


def _num(v, field, lo=None, integer=False, strict=True):
    if isinstance(v, bool) or not isinstance(v, int if integer else (int, float)):
        raise SuiteError(f"{field}: must be {'an integer' if integer else 'a number'}, got {v!r}")
    if lo is not None and (v <= lo if strict else v < lo):
        raise SuiteError(f"{field}: must be {'>' if strict else '>='} {lo}, got {v!r}")
    return v


def _range(v, field):
    ints = isinstance(v, list) and len(v) == 2 and all(
        isinstance(x, int) and not isinstance(x, bool) for x in v)
    if not ints or not 1 <= v[0] < v[1]:
        raise SuiteError(f"{field}: must be [lo, hi] integers with 1 <= lo < hi "
                         f"(lengths uniform in [lo, hi)), got {v!r}")
    return v


def _flags(v, field, owned):
    if not isinstance(v, dict):
        raise SuiteError(f"{field}: must be an object of flag -> value")
    out = {}
    for k, val in v.items():
        flag = k.lstrip("-").replace("_", "-")
        if flag in owned:
            raise SuiteError(f"{field}.{k}: set by the runner, a suite cannot override it")
        if not isinstance(val, (str, int, float, bool)):
            raise SuiteError(f"{field}.{k}: must be a string, number or boolean")
        out[flag] = val
    return out


def validate_suite(suite, path):
    """Checks every field and fills defaults; raises SuiteError naming the field."""
    if not isinstance(suite, dict):
        raise SuiteError("the suite must be a JSON object")
    for k in suite:
        if k not in TOP_KEYS:
            raise SuiteError(f"{k}: unknown field (known: {', '.join(sorted(TOP_KEYS))})")
    s = dict(suite)
    s.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    if not isinstance(s["name"], str) or not NAME_RE.match(s["name"]):
        raise SuiteError("name: must be 1-64 characters of [A-Za-z0-9._-]")
    model = s.get("model")
    if isinstance(model, str):
        d = model if os.path.isabs(model) else os.path.join(REPO, model)
        if not os.path.isfile(os.path.join(d, "config.json")):
            raise SuiteError(f"model: {model!r} is not a model directory (no config.json)")
        s["model"] = {"dir": os.path.normpath(d)}
    elif isinstance(model, dict) and set(model) <= {"synthetic", "seed"} and "synthetic" in model:
        if not isinstance(model["synthetic"], str) or not NAME_RE.match(model["synthetic"]):
            raise SuiteError("model.synthetic: must be a shape name such as \"llama-7b\"")
        s["model"] = {"synthetic": model["synthetic"],
                      "seed": _num(model.get("seed", 0), "model.seed", 0, True, False)}
    else:
        raise SuiteError("model: must be a model directory or {\"synthetic\": SHAPE, \"seed\": N}")
    a = s.get("adapters")
    if not isinstance(a, dict):
        raise SuiteError("adapters: missing; must be {\"num\": N, \"ranks\": [..], ...}")
    known = {"num", "ranks", "distinct_weights", "seed", "target_modules", "alpha_ratio", "dtype"}
    for k in a:
        if k not in known:
            raise SuiteError(f"adapters.{k}: unknown field (known: {', '.join(sorted(known))})")
    ranks = a.get("ranks")
    if not isinstance(ranks, list) or not ranks:
        raise SuiteError("adapters.ranks: must be a non-empty list of ranks")
    for i, r in enumerate(ranks):
        _num(r, f"adapters.ranks[{i}]", 0, True)
        if r > 256:
            raise SuiteError(f"adapters.ranks[{i}]: must be <= 256, got {r}")
    s["adapters"] = {
        "num": _num(a.get("num"), "adapters.num", 0, True),
        "ranks": ranks,
        "distinct_weights": _num(a.get("distinct_weights", 0), "adapters.distinct_weights", 0, True,
                                 False),
        "seed": _num(a.get("seed", 0), "adapters.seed", 0, True, False),
        "alpha_ratio": _num(a.get("alpha_ratio", 2), "adapters.alpha_ratio", 0),
        "dtype": a.get("dtype", "bf16"),
        "target_modules": a.get("target_modules", ["q_proj", "k_proj", "v_proj", "o_proj",
                                                   "gate_proj", "up_proj", "down_proj"]),
    }
    if s["adapters"]["dtype"] not in ("bf16", "f16", "f32"):
        raise SuiteError("adapters.dtype: must be bf16, f16 or f32")
    tm = s["adapters"]["target_modules"]
    if not isinstance(tm, list) or not tm or not all(isinstance(m, str) for m in tm):
        raise SuiteError("adapters.target_modules: must be a non-empty list of module names")
    s["server"] = _flags(s.get("server", {}), "server", SERVER_OWNED)
    s["loadgen"] = _flags(s.get("loadgen", {}), "loadgen", LOADGEN_OWNED)
    peer = s.get("peer", False)
    if isinstance(peer, bool):
        peer = {"enabled": peer}
    if not isinstance(peer, dict):
        raise SuiteError("peer: must be a boolean or {\"enabled\": ..., \"device\": ..., ...}")
    pk = {"enabled", "device", "dtype", "max_batch", "max_resident_adapters", "threads"}
    for k in peer:
        if k not in pk:
            raise SuiteError(f"peer.{k}: unknown field (known: {', '.join(sorted(pk))})")
    s["peer"] = {"enabled": peer.get("enabled", True), "device": peer.get("device", "cuda"),
                 "dtype": peer.get("dtype", "bf16"),
                 "max_batch": _num(peer.get("max_batch", 32), "peer.max_batch", 0, True),
                 "max_resident_adapters": _num(peer.get("max_resident_adapters", 64),
                                               "peer.max_resident_adapters", 0, True),
                 "threads": _num(peer.get("threads", 0), "peer.threads", 0, True, False)}
    if not isinstance(s["peer"]["enabled"], bool):
        raise SuiteError("peer.enabled: must be a boolean")
    if s["peer"]["device"] not in ("cuda", "cpu"):
        raise SuiteError("peer.device: must be cuda or cpu")
    if s["peer"]["dtype"] not in ("bf16", "f32"):
        raise SuiteError("peer.dtype: must be bf16 or f32")
    s["slo_ttft_s"] = _num(s.get("slo_ttft_s", 6), "slo_ttft_s", 0)
    runs = s.get("runs")
    if not isinstance(runs, list) or not runs:
        raise SuiteError("runs: must be a non-empty list of runs")
    seen = set()
    s["runs"] = []
    for i, r in enumerate(runs):
        f = f"runs[{i}]"
        if not isinstance(r, dict):
            raise SuiteError(f"{f}: must be an object")
        for k in r:
            if k not in RUN_KEYS:
                raise SuiteError(f"{f}.{k}: unknown field (known: {', '.join(sorted(RUN_KEYS))})")
        name = r.get("name", f"run{i}")
        if not isinstance(name, str) or not NAME_RE.match(name) or name in seen:
            raise SuiteError(f"{f}.name: must be a unique name of [A-Za-z0-9._-], got {name!r}")
        seen.add(name)
        n = _num(r.get("num_adapters"), f"{f}.num_adapters", 0, True, False)
        if n > s["adapters"]["num"]:
            raise SuiteError(f"{f}.num_adapters: {n} is more than adapters.num "
                             f"({s['adapters']['num']})")
        duration = _num(r.get("duration"), f"{f}.duration", 0)
        s["runs"].append({
            "name": name, "num_adapters": n,
            "alpha": _num(r.get("alpha", 1), f"{f}.alpha", 0),
            "rate": _num(r.get("rate"), f"{f}.rate", 0),
            "cv": _num(r.get("cv", 1), f"{f}.cv", 0),
            "duration": duration,
            "input_len": _range(r.get("input_len"), f"{f}.input_len"),
            "output_len": _range(r.get("output_len"), f"{f}.output_len"),
            "seed": _num(r.get("seed", 0), f"{f}.seed", 0, True, False),
            "timeout_s": _num(r.get("timeout_s", 240 + 3 * duration), f"{f}.timeout_s", 0),
            "peer": r.get("peer", s["peer"]["enabled"]),
        })
        if not isinstance(s["runs"][-1]["peer"], bool):
            raise SuiteError(f"{f}.peer: must be a boolean")
    return s


# ---------------------------------------------------------------- environment

def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def key_of(params):
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def run_checked(cmd, what):
    print(f"  $ {shlex.join(cmd)}", flush=True)
    if subprocess.run(cmd).returncode != 0:
        raise RuntimeError(f"{what} failed: {shlex.join(cmd)}")


def ensure_model(suite, bins, cache, dry):
    m = suite["model"]
    if "dir" in m:
        return m["dir"]
    out = os.path.join(cache, "models", f"{m['synthetic']}-seed{m['seed']}")
    stamp = out + ".done.json"
    cmd = [bins["make-model"], "--shape", m["synthetic"], "--seed", str(m["seed"]), "--out", out]
    if dry:
        print(f"  $ {shlex.join(cmd)}")
    elif not os.path.isfile(stamp):
        run_checked(cmd, "loraserve-make-model")
        with open(stamp, "w") as f:
            json.dump(m, f)
    return out


def ensure_adapters(suite, model_dir, bins, cache, dry):
    a = suite["adapters"]
    params = dict(a, base=model_dir)
    out = os.path.join(cache, "adapters", f"set-{a['num']}-{key_of(params)}")
    stamp = out + ".done.json"
    cmd = [bins["make-adapters"], "--base", model_dir, "--out", out, "--num", str(a["num"]),
           "--ranks", ",".join(map(str, a["ranks"])), "--seed", str(a["seed"]),
           "--distinct-weights", str(a["distinct_weights"]), "--alpha-ratio", str(a["alpha_ratio"]),
           "--dtype", a["dtype"], "--target-modules", ",".join(a["target_modules"])]
    if dry:
        print(f"  $ {shlex.join(cmd)}")
    elif not os.path.isfile(stamp):
        run_checked(cmd, "loraserve-make-adapters")
        with open(stamp, "w") as f:
            json.dump(params, f)
    return out


def adapter_view(set_dir, n, num, dry):
    """A directory holding only adapter-0000..n-1 (symlinks into the set of `num`), the names
    the load generator sends to, so a run registers n adapters, not the whole set."""
    if dry or n == 0 or n == num:
        return set_dir
    view = os.path.join(os.path.dirname(set_dir), "views", f"{os.path.basename(set_dir)}-n{n}")
    os.makedirs(view, exist_ok=True)
    for i in range(n):
        name = "adapter-%04d" % i
        link = os.path.join(view, name)
        if not os.path.islink(link):
            os.symlink(os.path.join(set_dir, name), link)
    return view


def peer_available(python):
    try:
        r = subprocess.run([python, "-c", "import torch, transformers, peft"], capture_output=True)
    except OSError:
        return False
    return r.returncode == 0


# ---------------------------------------------------------------- one run

def tail(path, n=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def stop(proc, grace):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
    return proc.returncode


def watch(srv, lgp, timeout_s):
    """Waits for the load generator; stops it early if the server dies or time runs out.
    Returns a problem, or None."""
    t0 = time.monotonic()
    try:
        while lgp.poll() is None:
            if srv.poll() is not None:
                return f"loraserve exited with status {srv.returncode} during the run"
            if time.monotonic() - t0 > timeout_s:
                return f"loraserve-loadgen still running after {timeout_s} s: stopped"
            time.sleep(0.2)
        return None
    finally:
        stop(lgp, 5)


def run_one(suite, run, model_dir, set_dir, bins, work, args, dry):
    """Server + loadgen (+ peer) for one run; returns its result record."""
    port, admin, http = free_ports(3)
    adapters = adapter_view(set_dir, run["num_adapters"], suite["adapters"]["num"], dry)
    base = os.path.join(work, run["name"])
    log, trace, rep, peer_rep = base + "-server.log", base + "-trace.jsonl", base + ".json", \
        base + "-peer.json"
    server = [bins["server"], f"--model={model_dir}", "--host=127.0.0.1", f"--port={port}",
              "--admin-host=127.0.0.1", f"--admin-port={admin}", f"--http-port={http}",
              f"--adapter-root={os.path.dirname(set_dir)}"]
    server += [f"--{k}={str(v).lower() if isinstance(v, bool) else v}"
               for k, v in suite["server"].items()]
    lg = dict({"wait-ready": 120, "drain-timeout": max(60, 2 * run["duration"]),
               "progress-interval": 5}, **suite["loadgen"])
    loadgen = [bins["loadgen"], "--addr", f"127.0.0.1:{port}", "--admin-addr", f"127.0.0.1:{admin}",
               "--num-adapters", str(run["num_adapters"]), "--alpha", str(run["alpha"]),
               "--rate", str(run["rate"]), "--cv", str(run["cv"]),
               "--duration", str(run["duration"]),
               "--input-len", "%d:%d" % tuple(run["input_len"]),
               "--output-len", "%d:%d" % tuple(run["output_len"]), "--seed", str(run["seed"]),
               "--slo-ttft", str(suite["slo_ttft_s"]), "--write-trace", trace, "--json", rep]
    if run["num_adapters"] > 0:
        loadgen += ["--register-adapters", adapters]
    loadgen += [f"--{k}={v}" for k, v in lg.items()]
    p = suite["peer"]
    peer = [args.peer_python, os.path.join(REPO, "bench", "peer", "hf_peer.py"),
            "--model", model_dir,
            "--adapters", adapters, "--trace", trace, "--json", peer_rep, "--device", p["device"],
            "--dtype", p["dtype"], "--max-batch", str(p["max_batch"]),
            "--max-resident-adapters", str(p["max_resident_adapters"]),
            "--slo-ttft", str(suite["slo_ttft_s"]), "--threads", str(p["threads"])]
    want_peer = run["peer"] if args.peer is None else args.peer
    print(f"\n== run {run['name']}: n={run['num_adapters']} alpha={run['alpha']} R={run['rate']}/s "
          f"cv={run['cv']} {run['duration']} s, input {run['input_len']} "
          f"output {run['output_len']}")
    if dry:
        for cmd in [server, loadgen] + ([peer] if want_peer else []):
            print(f"  $ {shlex.join(cmd)}")
        return {"name": run["name"], "ok": True}

    result = {"name": run["name"], "params": run, "server_log": log, "trace": trace,
              "loraserve": None, "peer": None, "problems": []}
    print(f"  server log: {log}", flush=True)
    with open(log, "w") as logf:
        srv = subprocess.Popen(server, stdout=logf, stderr=subprocess.STDOUT)
    try:
        print(f"  $ {shlex.join(loadgen)}", flush=True)
        lgp = subprocess.Popen(loadgen)
        problem = watch(srv, lgp, run["timeout_s"])
    finally:
        died = srv.poll() is not None
        rc = stop(srv, 60)
    problems = result["problems"]
    if problem:
        problems.append(problem)
    elif lgp.returncode != 0:
        problems.append(f"loraserve-loadgen exited with status {lgp.returncode}")
    result["server_exit"] = rc
    if rc is None:
        problems.append("loraserve did not exit within 60 s of SIGTERM: killed")
    elif rc != 0 and not died:
        problems.append(f"loraserve exited with status {rc} after SIGTERM (expected 0)")
    if died or rc != 0:
        print(f"  last lines of {log}:\n{tail(log)}", file=sys.stderr)
    if lgp.returncode == 0 and os.path.isfile(rep):
        with open(rep) as f:
            result["loraserve"] = json.load(f)
        s = result["loraserve"]["summary"]
        if s.get("failed", 0) or s.get("cancelled", 0):
            problems.append(f"{s.get('failed', 0)} loraserve requests failed, "
                            f"{s.get('cancelled', 0)} cancelled: "
                            f"{result['loraserve'].get('errors')}")
    elif not problems:
        problems.append("loraserve-loadgen wrote no report")

    if want_peer and os.path.isfile(trace):
        if not peer_available(args.peer_python):
            result["peer_skipped"] = (f"{args.peer_python} cannot import torch, transformers "
                                      "and peft (see bench/peer/hf_peer.py)")
            print(f"  peer skipped: {result['peer_skipped']}")
        else:
            print(f"  $ {shlex.join(peer)}", flush=True)
            prc = subprocess.run(peer).returncode
            if prc == 0 and os.path.isfile(peer_rep):
                with open(peer_rep) as f:
                    result["peer"] = json.load(f)
            else:
                result["problems"].append(f"hf_peer.py exited with status {prc}")
    result["ok"] = not result["problems"]
    return result


# ---------------------------------------------------------------- reporting

def _get(rep, *path):
    for k in path:
        if rep is None or not isinstance(rep, dict):
            return None
        rep = rep.get(k)
    return rep


ROWS = [("requests ok / failed", None, None),
        ("throughput (req/s)", ("summary", "throughput_rps"), 1),
        ("output tokens/s", ("summary", "output_tokens_per_s"), 1),
        ("ttft p50 (ms)", ("latency", "ttft_s", "p50"), 1e3),
        ("ttft p99 (ms)", ("latency", "ttft_s", "p99"), 1e3),
        ("e2e p50 (ms)", ("latency", "e2e_s", "p50"), 1e3),
        ("e2e p99 (ms)", ("latency", "e2e_s", "p99"), 1e3),
        ("SLO attainment (%)", ("slo", "attainment"), 1e2)]


def table(result):
    ls, pr = result.get("loraserve"), result.get("peer")
    lines = [f"  {'metric':<22}{'loraserve':>14}{'hf peer':>14}{'loraserve/peer':>16}"]
    for label, path, scale in ROWS:
        if path is None:
            cell = lambda r: "-" if r is None else "%d / %d" % (  # noqa: E731
                _get(r, "summary", "ok") or 0,
                (_get(r, "summary", "failed") or 0) + (_get(r, "summary", "cancelled") or 0))
            lines.append(f"  {label:<22}{cell(ls):>14}{cell(pr):>14}{'':>16}")
            continue
        a, b = _get(ls, *path), _get(pr, *path)
        fa = "-" if a is None else f"{a * scale:.2f}"
        fb = "-" if b is None else f"{b * scale:.2f}"
        ratio = f"{a / b:.2f}x" if a is not None and b else "-"
        lines.append(f"  {label:<22}{fa:>14}{fb:>14}{ratio:>16}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suite", help="suite JSON file (bench/suites/*.json)")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                    help="CMake build directory")
    ap.add_argument("--out", help="write every run's reports into this JSON file")
    ap.add_argument("--cache-dir", help="generated models and adapters (default BUILD/bench-cache)")
    ap.add_argument("--work-dir", help="logs, traces, reports (default BUILD/bench-runs/SUITE)")
    ap.add_argument("--dry-run", action="store_true", help="validate the suite, print the commands")
    ap.add_argument("--peer", dest="peer", action="store_true", default=None, help="run the peer")
    ap.add_argument("--no-peer", dest="peer", action="store_false", help="never run the peer")
    ap.add_argument("--peer-python",
                    default=os.environ.get("LORASERVE_PEER_PYTHON", sys.executable),
                    help="Python with torch/transformers/peft for the peer")
    args = ap.parse_args(argv)

    try:
        with open(args.suite) as f:
            raw = json.load(f)
        suite = validate_suite(raw, args.suite)
    except (OSError, json.JSONDecodeError) as e:
        print(f"run_suite: cannot read suite {args.suite}: {e}", file=sys.stderr)
        return 2
    except SuiteError as e:
        print(f"run_suite: suite {args.suite}: {e}", file=sys.stderr)
        return 2

    build = os.path.abspath(args.build_dir)
    bins = {"server": os.path.join(build, "server", "loraserve"),
            "loadgen": os.path.join(build, "bench", "loadgen", "loraserve-loadgen"),
            "make-adapters": os.path.join(build, "bench", "tools", "loraserve-make-adapters"),
            "make-model": os.path.join(build, "bench", "tools", "loraserve-make-model")}
    needed = ["server", "loadgen", "make-adapters"]
    if "synthetic" in suite["model"]:
        needed.append("make-model")
    missing = [bins[b] for b in needed if not os.access(bins[b], os.X_OK)]
    if missing and not args.dry_run:
        print(f"run_suite: missing binaries (build them in {build}): {', '.join(missing)}",
              file=sys.stderr)
        return 2
    cache = os.path.abspath(args.cache_dir or os.path.join(build, "bench-cache"))
    work = os.path.abspath(args.work_dir or os.path.join(build, "bench-runs", suite["name"]))
    print(f"suite {suite['name']} ({args.suite}): {len(suite['runs'])} run(s)"
          + (" [dry run]" if args.dry_run else ""))
    if not args.dry_run:
        os.makedirs(work, exist_ok=True)
    start = time.monotonic()
    results = []
    try:
        model_dir = ensure_model(suite, bins, cache, args.dry_run)
        set_dir = ensure_adapters(suite, model_dir, bins, cache, args.dry_run)
        for run in suite["runs"]:
            r = run_one(suite, run, model_dir, set_dir, bins, work, args, args.dry_run)
            results.append(r)
            if not args.dry_run:
                print(table(r))
                for problem in r["problems"]:
                    print(f"  PROBLEM: {problem}", file=sys.stderr)
    except RuntimeError as e:
        print(f"run_suite: {e}", file=sys.stderr)
        results.append({"name": "setup", "ok": False, "problems": [str(e)]})
    ok = all(r["ok"] for r in results)
    if args.dry_run:
        print("suite is valid")
        return 0
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"suite": suite["name"], "suite_file": os.path.abspath(args.suite),
                       "note": suite.get("note", ""), "build_dir": build, "ok": ok,
                       "seconds": time.monotonic() - start, "runs": results}, f, indent=2)
        print(f"\nresults: {args.out}")
    print(f"suite {suite['name']}: {'OK' if ok else 'FAILED'} in {time.monotonic() - start:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
