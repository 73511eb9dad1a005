#!/usr/bin/env python3
"""Hugging Face reference peer: serves a load-generator trace in-process with
transformers + PEFT, the way S-LoRA's PEFT baseline does (adapters switched per
batch), and writes a report in the load generator's schema so bench/run_suite.py
can show loraserve and the peer side by side.

    hf_peer.py --model DIR --adapters DIR --trace T.jsonl --json OUT.json \
        [--device cuda|cpu] [--dtype bf16|f32] [--max-batch 32] \
        [--max-resident-adapters 64] [--slo-ttft 6]

Trace: JSON Lines written by `loraserve-loadgen --write-trace`, one request a
line: {"id", "t" (seconds after replay start), "adapter" ("" = base model),
"input_len", "output_len", "prompt_ids"}.

Loop, on a real clock started at replay start: requests become visible at their
t; take the adapter of the oldest waiting request, batch up to --max-batch
waiting requests of that adapter, activate it (PeftModel.load_adapter on first
use, least-recently-used adapters beyond --max-resident-adapters deleted;
base-model requests run with adapters disabled), left-pad, prefill, then greedy
decode with past_key_values, ignoring EOS: every request gets exactly
output_len tokens, and the batch runs until its longest request is done.
TTFT and e2e count from the request's trace time t (queueing included).

Exit status: 0 report written (even with failed requests), 2 bad input,
3 torch / transformers / peft missing.

Python environment: torch + transformers 4.46.3 + peft 0.13.2, the pins of
scripts/golden-env.sh (`bash scripts/golden-env.sh`, then run this file with
/opt/goldenv/bin/python, or point bench/run_suite.py at it with
LORASERVE_PEER_PYTHON). By hand: /usr/bin/python3 -m venv /opt/peerenv &&
/opt/peerenv/bin/pip install torch "transformers==4.46.3" "peft==0.13.2"
"accelerate==1.1.1" (PyPI's torch; it runs on the CPU too). Debian's
python3-torch does not do: it reports version 1.13.0a0, which peft's
torch>=1.13 rejects, and transformers < 4.43 cannot read the fixture's llama3
rope_scaling.
"""

import argparse
import collections
import contextlib
import json
import math
import os
import sys
import time


def percentile(values, q):
    """numpy.percentile's default (linear) interpolation, without numpy."""
    if not values:
        return None
    a = sorted(values)
    pos = (len(a) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return a[lo] + (a[hi] - a[lo]) * (pos - lo)


def stats(values):
    """The load generator's latency entry: count + mean/p50/p90/p99/max (null when empty)."""
    if not values:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    return {
        "count": len(values),
        "mean": sum(values) / len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values),
    }


def fail(msg, code=2):
    print(f"hf_peer: {msg}", file=sys.stderr)
    sys.exit(code)


def load_trace(path):
    reqs = []
    try:
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as e:
                    fail(f"{path}:{lineno}: not JSON: {e}")
                for field, kind in (("id", int), ("t", (int, float)), ("adapter", str),
                                    ("output_len", int), ("prompt_ids", list)):
                    if not isinstance(r.get(field), kind):
                        fail(f"{path}:{lineno}: field \"{field}\" missing or of the wrong type")
                if r["output_len"] < 1 or not r["prompt_ids"]:
                    fail(f"{path}:{lineno}: output_len must be >= 1 and prompt_ids non-empty")
                reqs.append(r)
    except OSError as e:
        fail(f"cannot read --trace: {e}")
    reqs.sort(key=lambda r: (r["t"], r["id"]))
    return reqs


class Request:
    __slots__ = ("id", "t", "adapter", "prompt", "output_len", "first", "times", "end", "error",
                 "tokens")

    def __init__(self, r):
        self.id = r["id"]
        self.t = float(r["t"])
        self.adapter = r["adapter"]
        self.prompt = r["prompt_ids"]
        self.output_len = r["output_len"]
        self.first = None
        self.times = []
        self.end = None
        self.error = None
        self.tokens = []  # generated ids


class Peer:
    """The model, the PEFT wrapper and the adapter LRU."""

    def __init__(self, args, torch, transformers, peft):
        self.torch = torch
        self.peft = peft
        self.transformers = transformers
        self.args = args
        self.device = torch.device(args.device)
        dtype = {"bf16": torch.bfloat16, "f32": torch.float32}[args.dtype]
        model = transformers.AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype)
        self.model = model.to(self.device).eval()
        self.vocab = self.model.config.vocab_size
        self.peft_model = None  # created at the first adapter
        self.resident = collections.OrderedDict()  # name -> None, LRU first
        self.loads = 0
        self.evictions = 0

    def new_cache(self):
        cache = getattr(self.transformers, "DynamicCache", None)
        return cache() if cache is not None else None

    def activate(self, name):
        if name == "":
            return
        if name not in self.resident:
            path = os.path.join(self.args.adapters, name)
            if self.peft_model is None:
                self.peft_model = self.peft.PeftModel.from_pretrained(
                    self.model, path, adapter_name=name, is_trainable=False).eval()
            else:
                self.peft_model.load_adapter(path, adapter_name=name, is_trainable=False)
            self.resident[name] = None
            self.loads += 1
            while len(self.resident) > self.args.max_resident_adapters:
                old = next(iter(self.resident))
                if old == name:
                    break
                del self.resident[old]
                self.peft_model.delete_adapter(old)
                self.evictions += 1
        self.resident.move_to_end(name)
        self.peft_model.set_adapter(name)

    def run_batch(self, batch, clock):
        """Prefill + greedy decode for requests of one adapter; records times."""
        torch = self.torch
        adapter = batch[0].adapter
        self.activate(adapter)
        net = self.peft_model if self.peft_model is not None else self.model
        longest = max(len(r.prompt) for r in batch)
        ids = torch.zeros((len(batch), longest), dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for i, r in enumerate(batch):
            ids[i, longest - len(r.prompt):] = torch.tensor(r.prompt, dtype=torch.long)
            mask[i, longest - len(r.prompt):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        steps = max(r.output_len for r in batch)
        no_lora = net.disable_adapter() if (adapter == "" and net is not self.model) \
            else contextlib.nullcontext()
        with torch.inference_mode(), no_lora:
            out = net(input_ids=ids, attention_mask=mask, position_ids=pos,
                      past_key_values=self.new_cache(), use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1, :].argmax(-1)
            last_pos = pos[:, -1:]
            for step in range(steps):
                tokens = nxt.tolist()  # waits for the device: the token exists now
                now = clock()
                for r, token in zip(batch, tokens):
                    if step < r.output_len:
                        r.tokens.append(token)
                        if step == 0:
                            r.first = now
                        r.times.append(now)
                        if step + 1 == r.output_len:
                            r.end = now
                if step + 1 == steps:
                    break
                mask = torch.cat([mask, torch.ones((len(batch), 1), dtype=mask.dtype,
                                                   device=self.device)], dim=1)
                last_pos = last_pos + 1
                out = net(input_ids=nxt[:, None], attention_mask=mask, position_ids=last_pos,
                          past_key_values=past, use_cache=True)
                past = out.past_key_values
                nxt = out.logits[:, -1, :].argmax(-1)


def serve(peer, reqs, progress_every=10.0):
    """Replays `reqs` on a real clock; returns (seconds from replay start to the end, batches)."""
    start = time.perf_counter()
    clock = lambda: time.perf_counter() - start  # noqa: E731
    waiting = []
    nxt = 0
    done = 0
    batches = 0
    batched = 0
    last_report = 0.0
    while nxt < len(reqs) or waiting:
        now = clock()
        while nxt < len(reqs) and reqs[nxt].t <= now:
            waiting.append(reqs[nxt])
            nxt += 1
        if not waiting:
            time.sleep(min(max(reqs[nxt].t - now, 0.0), 0.05))
            continue
        adapter = waiting[0].adapter
        batch = [r for r in waiting if r.adapter == adapter][:peer.args.max_batch]
        chosen = {id(r) for r in batch}
        waiting = [r for r in waiting if id(r) not in chosen]
        try:
            peer.run_batch(batch, clock)
        except Exception as e:  # one failed batch must not end the run
            for r in batch:
                r.error = type(e).__name__
            print(f"hf_peer: batch of {len(batch)} ({adapter or 'base'}) failed: {e}",
                  file=sys.stderr)
        batches += 1
        batched += len(batch)
        done += len(batch)
        if clock() - last_report >= progress_every or done == len(reqs):
            last_report = clock()
            print(f"hf_peer: {done}/{len(reqs)} requests, {last_report:.1f} s, "
                  f"{len(waiting)} waiting, {batches} batches (mean {batched / batches:.1f}), "
                  f"{peer.loads} adapter loads", file=sys.stderr, flush=True)
    return clock(), batches


def report(args, reqs, replay_end, batches, peer, versions):
    """The report in loraserve-loadgen's JSON schema (bench/loadgen/latency_report.h)."""
    ok = [r for r in reqs if r.error is None and r.end is not None]
    errors = collections.Counter(r.error or "INCOMPLETE" for r in reqs if r.error or r.end is None)
    ttft = [r.first - r.t for r in ok]
    e2e = [r.end - r.t for r in ok]
    itl = [b - a for r in ok for a, b in zip(r.times, r.times[1:])]
    tpot = [(r.end - r.first) / (r.output_len - 1) for r in ok if r.output_len > 1]
    out_tokens = sum(r.output_len for r in ok)
    in_tokens = sum(len(r.prompt) for r in ok)
    met = sum(1 for x in ttft if x <= args.slo_ttft)
    last_end = max((r.end for r in ok), default=0.0) if len(ok) == len(reqs) else replay_end
    duration = max(0.0, last_end - min(r.t for r in reqs)) if reqs else 0.0
    rate = (lambda x: x / duration) if duration > 0 else (lambda x: 0.0)
    return {
        "config": {
            "server": "hf-peft-peer", "model": args.model, "adapters": args.adapters,
            "trace": args.trace, "device": args.device, "dtype": args.dtype,
            "max_batch": args.max_batch, "max_resident_adapters": args.max_resident_adapters,
            "slo_ttft": args.slo_ttft, "versions": versions,
        },
        "summary": {
            "requests": len(reqs),
            "ok": len(ok),
            "failed": len(reqs) - len(ok),
            "cancelled": 0,
            "duration_s": duration,
            "throughput_rps": rate(len(ok)),
            "output_tokens_per_s": rate(out_tokens),
            "total_tokens_per_s": rate(in_tokens + out_tokens),
            "prompt_tokens": in_tokens,
            "output_tokens": out_tokens,
            "finish_reasons": {"length": len(ok)} if ok else {},
        },
        "latency": {"ttft_s": stats(ttft), "itl_s": stats(itl), "tpot_s": stats(tpot),
                    "e2e_s": stats(e2e), "send_lag_s": stats([])},
        "slo": {"ttft_s": args.slo_ttft, "attainment": met / len(reqs) if reqs else 0.0,
                "met": met},
        "errors": dict(errors),
        "peer": {"batches": batches, "mean_batch": len(reqs) / batches if batches else 0.0,
                 "adapter_loads": peer.loads, "adapter_evictions": peer.evictions},
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="Hugging Face model directory")
    p.add_argument("--adapters", required=True,
                   help="directory holding one PEFT directory per adapter name")
    p.add_argument("--trace", required=True,
                   help="JSON Lines trace from loraserve-loadgen --write-trace")
    p.add_argument("--json", required=True, help="report file to write")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--dtype", default="bf16", choices=["bf16", "f32"])
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-resident-adapters", type=int, default=64)
    p.add_argument("--slo-ttft", type=float, default=6.0, help="TTFT SLO in seconds")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = p.parse_args(argv)
    if args.max_batch < 1:
        fail("--max-batch must be >= 1")
    if args.max_resident_adapters < 1:
        fail("--max-resident-adapters must be >= 1")

    try:
        import torch
        import transformers
        import peft
    except ImportError as e:
        fail(f"missing Python package \"{e.name}\": install torch, transformers and peft, e.g. "
             "pip install torch 'transformers==4.46.3' 'peft==0.13.2' 'accelerate==1.1.1' "
             "(see the header of bench/peer/hf_peer.py)", code=3)
    if args.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda, but torch sees no CUDA device (use --device cpu)")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    trace = load_trace(args.trace)
    if not trace:
        fail(f"--trace {args.trace} holds no requests")
    names = sorted({r["adapter"] for r in trace if r["adapter"]})
    missing = [n for n in names
               if not os.path.isfile(os.path.join(args.adapters, n, "adapter_config.json"))]
    if missing:
        fail(f"--adapters {args.adapters}: no PEFT directory for {len(missing)} adapter(s) of "
             f"the trace, e.g. {missing[:3]}")

    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "peft": peft.__version__}
    print(f"hf_peer: loading {args.model} on {args.device} ({args.dtype}); {len(trace)} requests, "
          f"{len(names)} adapters; torch {versions['torch']}, transformers "
          f"{versions['transformers']}, peft {versions['peft']}", file=sys.stderr, flush=True)
    peer = Peer(args, torch, transformers, peft)
    bad = [r["id"] for r in trace if any(not 0 <= t < peer.vocab for t in r["prompt_ids"])]
    if bad:
        fail(f"trace requests {bad[:5]} have prompt ids outside [0, {peer.vocab})")
    reqs = [Request(r) for r in trace]
    replay_end, batches = serve(peer, reqs)
    rep = report(args, reqs, replay_end, batches, peer, versions)
    with open(args.json, "w") as f:
        json.dump(rep, f, indent=2)
    s = rep["summary"]
    print(f"hf_peer: {s['ok']} ok, {s['failed']} failed in {s['duration_s']:.1f} s: "
          f"{s['throughput_rps']:.2f} req/s, {s['output_tokens_per_s']:.1f} output tok/s; "
          f"report {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
