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
# The Python targets (the gateway, LiteLLM) run on the interpreter the gateway image
# ships: Debian bookworm's python3 (the CI image's base; the default base image,
# python:3.11-slim-bookworm, is built with the same PGO + LTO optimisations). A
# from-source build without them (pyenv's default) runs the same requests ~25% slower:
# bench/partial-interpreter.md.
SHIPPED_PYTHON="${AIGW_BENCH_SHIPPED_PYTHON:-/usr/bin/python3}"
if [ ! -x "$SHIPPED_PYTHON" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
fi
shipped="$("$SHIPPED_PYTHON" -c 'import sys; print(sys.version.split()[0])')"
# A venv built on another interpreter (earlier versions of this script) is rebuilt.
on_shipped() { [ "$("$1/bin/python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)" = "$shipped" ]; }
if [ ! -x "$BENCH_CACHE/litellm/bin/litellm" ] || ! on_shipped "$BENCH_CACHE/litellm"; then
  rm -rf "$BENCH_CACHE/litellm"
  uv venv --quiet --python "$SHIPPED_PYTHON" "$BENCH_CACHE/litellm"
  uv pip install --quiet --python "$BENCH_CACHE/litellm/bin/python" "litellm[proxy]"
fi
if [ ! -f "$BENCH_CACHE/portkey/node_modules/@portkey-ai/gateway/package.json" ]; then
  mkdir -p "$BENCH_CACHE/portkey"
  (cd "$BENCH_CACHE/portkey" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund @portkey-ai/gateway)
fi

# The gateway targets' interpreter: the shipped python3 with the gateway's own locked
# dependencies (as the image installs them), plus granian (the server comparison) and
# py-spy; re-installed whenever the lock file's gateway dependencies change.
wanted="$(cd "$(dirname "$0")/.." && uv export --frozen --no-default-groups --no-dev --no-emit-project --no-header)"
if [ -d "$BENCH_CACHE/variants" ] && ! on_shipped "$BENCH_CACHE/variants"; then
  rm -rf "$BENCH_CACHE/variants" "$BENCH_CACHE/variants-requirements.txt"
fi
if [ ! -x "$BENCH_CACHE/variants/bin/granian" ] \
  || [ "$wanted" != "$(cat "$BENCH_CACHE/variants-requirements.txt" 2>/dev/null)" ]; then
  [ -x "$BENCH_CACHE/variants/bin/python" ] || uv venv --quiet --python "$SHIPPED_PYTHON" "$BENCH_CACHE/variants"
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
