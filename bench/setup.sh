#!/usr/bin/env bash
# Installs what the benchmark needs, idempotently, outside the repository:
# Debian nginx + wrk + redis-server + PostgreSQL, LiteLLM proxy in its own virtualenv,
# the Portkey gateway via npm.
set -euo pipefail
BENCH_CACHE="${AIGW_BENCH_CACHE:-$HOME/.cache/aigw/bench}"
mkdir -p "$BENCH_CACHE"
export UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null || ! command -v taskset >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk util-linux >/dev/null
fi
if [ ! -x "$BENCH_CACHE/litellm/bin/litellm" ]; then
  uv venv --quiet --python python3.11 "$BENCH_CACHE/litellm"
  uv pip install --quiet --python "$BENCH_CACHE/litellm/bin/python" "litellm[proxy]"
fi
if [ ! -f "$BENCH_CACHE/portkey/node_modules/@portkey-ai/gateway/package.json" ]; then
  mkdir -p "$BENCH_CACHE/portkey"
  (cd "$BENCH_CACHE/portkey" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund @portkey-ai/gateway)
fi

# The server comparison: granian hosting the same app, with the gateway's own dependencies
# (re-installed whenever the lock file's gateway dependencies change).
wanted="$(cd "$(dirname "$0")/.." && uv export --frozen --no-default-groups --no-dev --no-emit-project --no-header)"
if [ ! -x "$BENCH_CACHE/variants/bin/granian" ] \
  || [ "$wanted" != "$(cat "$BENCH_CACHE/variants-requirements.txt" 2>/dev/null)" ]; then
  [ -x "$BENCH_CACHE/variants/bin/python" ] || uv venv --quiet --python python3.11 "$BENCH_CACHE/variants"
  printf '%s\n' "$wanted" > "$BENCH_CACHE/variants-requirements.txt"
  uv pip install --quiet --python "$BENCH_CACHE/variants/bin/python" \
    -r "$BENCH_CACHE/variants-requirements.txt" granian py-spy
fi
if ! command -v redis-server >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
# The governance target's audit log: a private cluster the bench creates (initdb) per run.
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
echo "$BENCH_CACHE"
