#!/usr/bin/env bash
# Creates the Python environment that generates fixtures and Hugging Face
# goldens (scripts/fixtures/*.py). Only needed to regenerate tests/data; the
# test suite itself never needs Python. Idempotent.
#   scripts/golden-env.sh [VENV_DIR]     (default /opt/goldenv)
set -euo pipefail
venv="${1:-/opt/goldenv}"
LORASERVE_EXTRA_PKGS="python3-venv python3-numpy" bash "$(dirname "$0")/install-deps.sh"
if [[ ! -x "$venv/bin/python" ]]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
"$venv/bin/pip" install -q "torch" "transformers==4.46.3" "peft==0.13.2" \
  "tokenizers>=0.20,<0.21" "safetensors" "accelerate==1.1.1"
"$venv/bin/python" -c "import torch, transformers, peft, tokenizers; \
print('golden env:', torch.__version__, transformers.__version__, peft.__version__, tokenizers.__version__)"
