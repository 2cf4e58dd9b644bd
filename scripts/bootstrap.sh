#!/usr/bin/env bash
# Create ./.venv (Python 3.11+) and install pgbot with what the given extras need. Idempotent and quick
# when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
python_bin="${PYTHON:-python3}"
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "pgbot needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
stamp=".venv/.pgbot-installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
  touch "$stamp"
fi
