#!/usr/bin/env bash
# Installs dependencies (apt), builds, and runs the loraserve server on the
# small default model (tests/data/tiny-llama: a 2-layer Llama with random
# weights, so its text is gibberish, and five PEFT adapters of ranks 2..64).
# The README's first command. Extra arguments go to the server, e.g.
#   scripts/demo.sh --device=cpu --port=50061
# Stop it with Ctrl-C (graceful drain, exit 0).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja
cmake --build build -j "${JOBS:-$(nproc)}" --target loraserve loraserve-cli
cat <<'MSG'

== loraserve demo: try, from another terminal in this directory:
   build/server/loraserve-cli health
   build/server/loraserve-cli generate --max-tokens 16 "The quick brown fox"
   build/server/loraserve-cli generate --adapter sql --stream --max-tokens 16 "The quick brown fox"
   build/server/loraserve-cli adapters load patterns r4_patterns
   build/server/loraserve-cli adapters list
   curl -s localhost:8080/metrics | grep ^loraserve_
MSG
exec build/server/loraserve --model=tests/data/tiny-llama \
  --adapter-root=tests/data/tiny-llama/adapters \
  --lora-modules=sql=r8_all,chat=r16_rslora_attn "$@"
