#!/usr/bin/env python3
"""Tests bench/run_suite.py's suite validation (ctest: bench_run_suite_validation).

Every shipped suite in bench/suites/ passes --dry-run; each malformed suite
written to a temporary directory is refused with exit status 2 and a message
naming the bad field. Standard library only.

    run_suite_validation_test.py [PATH/TO/run_suite.py]
"""

import glob
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

GOOD = {
    "model": "tests/data/tiny-llama",
    "adapters": {"num": 4, "ranks": [4, 8]},
    "server": {"device": "cpu"},
    "runs": [{"name": "r", "num_adapters": 4, "alpha": 1, "rate": 2, "cv": 1, "duration": 1,
              "input_len": [8, 16], "output_len": [8, 16]}],
}


def with_(path, value):
    """GOOD with the field at `path` (a list of keys/indices) set to `value` (None: removed)."""
    suite = json.loads(json.dumps(GOOD))
    node = suite
    for k in path[:-1]:
        node = node[k]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return suite


# (case name, suite, text the error must contain)
BAD = [
    ("missing runs", with_(["runs"], None), "runs: must be a non-empty list"),
    ("empty runs", with_(["runs"], []), "runs: must be a non-empty list"),
    ("negative rate", with_(["runs", 0, "rate"], -1), "runs[0].rate: must be > 0"),
    ("string alpha", with_(["runs", 0, "alpha"], "1"), "runs[0].alpha: must be a number"),
    ("reversed lengths", with_(["runs", 0, "input_len"], [16, 8]), "runs[0].input_len"),
    ("too many adapters", with_(["runs", 0, "num_adapters"], 5), "runs[0].num_adapters: 5 is more"),
    ("typo in a run", with_(["runs", 0, "durration"], 3), "runs[0].durration: unknown field"),
    ("empty ranks", with_(["adapters", "ranks"], []), "adapters.ranks: must be a non-empty list"),
    ("rank too big", with_(["adapters", "ranks"], [8, 512]), "adapters.ranks[1]: must be <= 256"),
    ("zero adapters", with_(["adapters", "num"], 0), "adapters.num: must be > 0"),
    ("no model dir", with_(["model"], "tests/data/no-such-model"),
     "model: 'tests/data/no-such-model'"),
    ("bad synthetic", with_(["model"], {"synthetic": 7}), "model.synthetic"),
    ("runner-owned flag", with_(["server", "port"], 1234), "server.port: set by the runner"),
    ("unknown top-level", with_(["serverr"], {}), "serverr: unknown field"),
    ("bad peer device", with_(["peer"], {"device": "tpu"}), "peer.device: must be cuda or cpu"),
]


def run(runner, suite_path):
    p = subprocess.run([sys.executable, runner, suite_path, "--dry-run", "--build-dir",
                        os.path.join(tempfile.gettempdir(), "no-build")],
                       capture_output=True, text=True, cwd=REPO)
    return p.returncode, p.stdout + p.stderr


def main():
    runner = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "bench", "run_suite.py")
    passed = failed = 0

    def check(name, cond, detail):
        nonlocal passed, failed
        if cond:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {name}: {detail}")

    for path in sorted(glob.glob(os.path.join(REPO, "bench", "suites", "*.json"))):
        rc, out = run(runner, path)
        check(os.path.basename(path), rc == 0 and "suite is valid" in out, f"rc {rc}\n{out}")
    with tempfile.TemporaryDirectory() as tmp:
        good = os.path.join(tmp, "good.json")
        with open(good, "w") as f:
            json.dump(GOOD, f)
        rc, out = run(runner, good)
        check("good suite", rc == 0, f"rc {rc}\n{out}")
        for name, suite, expected in BAD:
            path = os.path.join(tmp, "bad.json")
            with open(path, "w") as f:
                json.dump(suite, f)
            rc, out = run(runner, path)
            check(name, rc == 2 and expected in out, f"rc {rc}, expected {expected!r} in:\n{out}")
        with open(os.path.join(tmp, "broken.json"), "w") as f:
            f.write("{not json")
        rc, out = run(runner, os.path.join(tmp, "broken.json"))
        check("not JSON", rc == 2 and "cannot read suite" in out, f"rc {rc}\n{out}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
