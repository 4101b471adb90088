#!/usr/bin/env bash
# Create .venv and install the portal (plus test tools with "test"). Idempotent: reinstalls
# only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Python 3.11 or newer is required (found: $("$python" --version 2>&1))." >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.installed${extra:+-$extra}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "Installing the portal into .venv (log: .venv/install.log) ..."
  if ! { .venv/bin/python -m pip install --upgrade pip &&
         .venv/bin/python -m pip install -e ".${extra:+[$extra]}"; } > .venv/install.log 2>&1; then
    tail -n 30 .venv/install.log >&2
    echo "Installing failed; the full log is in .venv/install.log." >&2
    exit 1
  fi
  touch "$stamp"
fi
