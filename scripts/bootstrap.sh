# Sourced by the other scripts: make sure uv and the project's virtualenv exist.
# Idempotent; needs only Python 3.11+ (installs uv into a private tools venv
# when it is not on PATH) and uses apt-get for the services the tests need.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${AIGW_TOOLS_DIR:-$HOME/.cache/aigw-tools}"
# Trust the system certificate store (corporate proxies add their CA there).
export UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"

ensure_uv() {
  if command -v uv >/dev/null 2>&1; then UV="$(command -v uv)"; return; fi
  if [ -x "$TOOLS/bin/uv" ]; then UV="$TOOLS/bin/uv"; return; fi
  local python
  python="$(command -v python3.13 || command -v python3.12 || command -v python3.11 || command -v python3)"
  if ! "$python" -m venv "$TOOLS" >/dev/null 2>&1; then
    # Debian ships venv/ensurepip separately.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$python" -m venv "$TOOLS"
    else
      echo "error: cannot create a virtualenv with $python; install python3-venv" >&2
      exit 1
    fi
  fi
  "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check uv
  UV="$TOOLS/bin/uv"
}

ensure_env() {
  ensure_uv
  cd "$ROOT"
  "$UV" sync --frozen --quiet
}
