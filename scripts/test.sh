#!/usr/bin/env bash
# Run the test suite against real PostgreSQL and Redis (found or started by the tests themselves).
# PGBOT_TEST_DSN / PGBOT_REDIS_URL point the tests at other servers. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh dev
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
