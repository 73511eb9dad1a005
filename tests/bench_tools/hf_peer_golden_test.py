#!/usr/bin/env python3
"""Tests bench/peer/hf_peer.py's batching (ctest: bench_hf_peer_golden).

The peer's left-padded batched prefill + greedy decode, with adapters switched
per batch and least-recently-used adapters deleted beyond the resident limit,
must reproduce the fixture's Hugging Face greedy goldens
(tests/data/tiny-llama/golden.json) token for token; then a small replay must
report every request with the load generator's schema. Exits 77 (skipped)
when torch / transformers / peft are not importable, as in CI.

    [LORASERVE_PEER_PYTHON=/opt/peerenv/bin/python] hf_peer_golden_test.py
"""

import json
import os
import subprocess
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MODEL = os.path.join(REPO, "tests", "data", "tiny-llama")
SKIP = 77


def main():
    python = os.environ.get("LORASERVE_PEER_PYTHON", sys.executable)
    if os.path.realpath(python) != os.path.realpath(sys.executable):
        os.execv(python, [python] + sys.argv)  # run the whole test under the peer's Python
    try:
        import torch
        import transformers
        import peft
    except ImportError as e:
        print(f"skipped: {e.name} is not importable (set LORASERVE_PEER_PYTHON)")
        return SKIP
    sys.path.insert(0, os.path.join(REPO, "bench", "peer"))
    import hf_peer

    passed = failed = 0
    with open(os.path.join(MODEL, "golden.json")) as f:
        cases = json.load(f)["cases"]
    args = types.SimpleNamespace(model=MODEL, adapters=os.path.join(MODEL, "adapters"),
                                 device="cpu", dtype="f32", max_batch=32,
                                 max_resident_adapters=2)
    peer = hf_peer.Peer(args, torch, transformers, peft)
    by_adapter = {}
    for c in cases:
        by_adapter.setdefault(c["adapter"], []).append(c)
    for adapter, group in by_adapter.items():
        reqs = [hf_peer.Request({"id": i, "t": 0.0, "adapter": adapter,
                                 "prompt_ids": c["prompt_ids"],
                                 "output_len": len(c["greedy_ids"])})
                for i, c in enumerate(group)]
        peer.run_batch(reqs, lambda: 0.0)
        for r, c in zip(reqs, group):
            if r.tokens == c["greedy_ids"]:
                passed += 1
            else:
                failed += 1
                print(f"FAIL {c['name']}: got {r.tokens}, want {c['greedy_ids']}")
    if peer.evictions == 0:
        failed += 1
        print("FAIL: expected evictions with --max-resident-adapters 2")

    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "t.jsonl")
        with open(trace, "w") as f:
            for i, c in enumerate(cases):
                f.write(json.dumps({"id": i, "t": 0.05 * i, "adapter": c["adapter"],
                                    "input_len": len(c["prompt_ids"]), "output_len": 4,
                                    "prompt_ids": c["prompt_ids"]}) + "\n")
        out = os.path.join(tmp, "r.json")
        rc = subprocess.run([sys.executable, os.path.join(REPO, "bench", "peer", "hf_peer.py"),
                             "--model", MODEL, "--adapters", args.adapters, "--trace", trace,
                             "--json", out, "--device", "cpu", "--dtype", "f32"]).returncode
        rep = json.load(open(out)) if rc == 0 else {}
        s = rep.get("summary", {})
        ok = (rc == 0 and s.get("requests") == len(cases) and s.get("ok") == len(cases)
              and s.get("output_tokens") == 4 * len(cases)
              and rep["latency"]["ttft_s"]["count"] == len(cases)
              and rep["latency"]["itl_s"]["count"] == 3 * len(cases)
              and rep["slo"]["met"] == len(cases))
        passed += ok
        failed += not ok
        if not ok:
            print(f"FAIL replay: rc {rc}, report {json.dumps(rep)[:2000]}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
