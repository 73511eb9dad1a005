#!/usr/bin/env python3
"""Regenerates every fixture and Hugging Face golden under tests/data/.

    scripts/golden-env.sh                      # once: the Python env (torch, transformers, peft, tokenizers)
    /opt/goldenv/bin/python scripts/make_fixtures.py

Runs, in order:
  scripts/fixtures/make_tokenizers.py   trained tokenizers + tokenizer goldens (tests/data/tokenizers/)
  scripts/fixtures/make_tiny_models.py  tiny Llama / Qwen2 models, PEFT adapters, logits goldens
Both are deterministic; tests/data/README.md records the versions that produced the committed files.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

for script in ("make_tokenizers.py", "make_tiny_models.py"):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, os.path.join(HERE, "fixtures", script)], check=True)
