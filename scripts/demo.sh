#!/usr/bin/env bash
# The README's first command: installs dependencies (apt), builds, starts the
# loraserve server on the small default model (tests/data/tiny-llama: a
# 2-layer Llama with random weights, so its text is gibberish, plus PEFT
# adapters of ranks 2..64), sends concurrent streaming requests for different
# adapters with loraserve-cli, prints the answers, shows the adapters and a few
# metrics, and stops the server cleanly (SIGTERM, graceful drain).
#
#   scripts/demo.sh            the scripted demo above
#   scripts/demo.sh --serve    just run the server in the foreground (Ctrl-C stops it)
# Extra server flags may follow, e.g. scripts/demo.sh --serve --device=cpu
set -euo pipefail
cd "$(dirname "$0")/.."

serve=0
if [[ "${1:-}" == "--serve" ]]; then serve=1; shift; fi

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja
cmake --build build -j "${JOBS:-$(nproc)}" --target loraserve loraserve-cli

port="${LORASERVE_PORT:-50051}"
admin_port="${LORASERVE_ADMIN_PORT:-50052}"
http_port="${LORASERVE_HTTP_PORT:-8080}"
server_args=(--model=tests/data/tiny-llama --adapter-root=tests/data/tiny-llama/adapters
             --lora-modules=sql=r8_all,chat=r16_rslora_attn
             --port="$port" --admin-port="$admin_port" --http-port="$http_port" "$@")
if [[ $serve -eq 1 ]]; then
  exec build/server/loraserve "${server_args[@]}"
fi

cli=(build/server/loraserve-cli --addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin_port")
log=build/demo-server.log
echo "== starting loraserve (log: $log)"
build/server/loraserve "${server_args[@]}" >"$log" 2>&1 &
server_pid=$!
trap 'kill -TERM $server_pid 2>/dev/null || true' EXIT

for _ in $(seq 1 120); do
  if [[ "$("${cli[@]}" --timeout 2 health 2>/dev/null || true)" == "SERVING" ]]; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "loraserve exited during startup:"; tail -20 "$log"; exit 1
  fi
  sleep 0.5
done
echo "== health: $("${cli[@]}" health)"

echo "== three concurrent streaming requests: base model, adapter sql (r8), adapter chat (r16 rsLoRA)"
out=$(mktemp -d)
for adapter in "" sql chat; do
  name="${adapter:-base}"
  "${cli[@]}" generate ${adapter:+--adapter "$adapter"} --stream --max-tokens 24 \
    --temperature 0 "The quick brown fox" >"$out/$name.txt" 2>"$out/$name.err" &
done
wait_status=0
for job in $(jobs -p | grep -v "^$server_pid\$"); do wait "$job" || wait_status=1; done
for name in base sql chat; do
  printf '  [%-4s] %s\n         %s\n' "$name" "$(tr -d '\n' <"$out/$name.txt")" "$(cat "$out/$name.err")"
done
[[ $wait_status -eq 0 ]] || { echo "a request failed"; exit 1; }

echo "== hot-load an adapter through AdapterAdmin, use it, list adapters"
"${cli[@]}" adapters load patterns r4_patterns
printf '  [patterns] %s\n' "$("${cli[@]}" generate --adapter patterns --max-tokens 12 --temperature 0 "The quick brown fox" 2>/dev/null | tr -d '\n')"
"${cli[@]}" adapters list | sed 's/^/  /'

echo "== a few metrics from http://127.0.0.1:$http_port/metrics"
if command -v curl >/dev/null 2>&1; then
  curl -s "127.0.0.1:$http_port/metrics" |
    grep -E '^loraserve_(request_success_total\{finished_reason="length"\}|generation_tokens_total|prompt_tokens_total|lora_requests_info|pool_pages)' |
    sed 's/^/  /'
fi

echo "== stopping loraserve (SIGTERM)"
kill -TERM "$server_pid"
trap - EXIT
if wait "$server_pid"; then
  echo "== loraserve exited cleanly (status 0)"
else
  rc=$?; echo "loraserve exited with status $rc"; tail -20 "$log"; exit "$rc"
fi
rm -rf "$out"
