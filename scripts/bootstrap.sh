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
  local python="" candidate
  # The first interpreter that actually runs: a version manager's shim (pyenv)
  # can be on PATH for a version that is not selected, and then fails at run time.
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
      python="$(command -v "$candidate")"
      break
    fi
  done
  if [ -z "$python" ]; then
    echo "error: no Python 3.11+ found on PATH; install python3 (3.11 or newer)" >&2
    exit 1
  fi
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
  # Compiled bytecode in the virtualenv: with PYTHONDONTWRITEBYTECODE set (as on
  # this project's machines and CI) nothing is ever cached, and every `aigw plan`
  # and test process would compile the Pulumi SDKs it imports again (about half
  # of a plan's time; bench/plan-profile.md). scripts/compile_bytecode.py compiles
  # all but the SDK service packages the program never imports (half the CPU of
  # `uv sync --compile-bytecode`; bench/suite-time.md); later runs skip what is
  # already compiled.
  "$UV" sync --frozen --quiet
  .venv/bin/python scripts/compile_bytecode.py
}
