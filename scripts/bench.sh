#!/usr/bin/env bash
# Run one benchmark (or all): ./scripts/bench.sh [schema_tokens|introspection|cold_start|big_result|csv_export|overhead|prompt_cache|quality] [args]
# Uses the local PostgreSQL (PGBOT_TEST_DSN, else 127.0.0.1:5432) in throwaway databases.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh dev
name="${1:-}"
[ $# -gt 0 ] && shift
if [ -z "$name" ]; then
  exec .venv/bin/python -m bench "$@"
fi
exec .venv/bin/python -m "bench.$name" "$@"
