#!/usr/bin/env bash
# Try pgbot on a fresh machine: uses pgbot.toml if present, else an embedded PostgreSQL with a sample shop.
# Set OPENAI_API_KEY (or [llm] base_url in pgbot.toml) to ask in plain English; slash commands always work.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh embedded,charts
exec .venv/bin/pgbot demo "$@"
