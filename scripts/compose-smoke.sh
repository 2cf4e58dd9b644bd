#!/usr/bin/env bash
# End-to-end check of docker-compose.yml and deploy/Dockerfile on a host with Docker (not part of the test run:
# CI has no Docker daemon). Builds the image, starts Postgres, Redis and the bot, waits for the healthchecks,
# probes /healthz and /readyz, loads the sample shop, asks slash commands, takes a backup, stops the bot with
# SIGTERM (it must log shutdown_started/shutdown_finished and exit 0) and removes everything again.
#
#   scripts/compose-smoke.sh            # the real images (python:3.11-slim, postgres:16, redis:7)
#   scripts/compose-smoke.sh --offline  # no Docker Hub: stand-ins built from Debian packages (offline-images.sh)
#
# The bot runs in Slack HTTP mode with dummy tokens: it then needs no connection to Slack, so /readyz must be
# 200 once Postgres and Redis answer. (The default socket mode stays 503 "slack: not connected" without real
# tokens.) Needs port 9108 free. Exit 0: every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--offline" ]]; then
    ./scripts/offline-images.sh
    export POSTGRES_IMAGE=pgbot-local/postgres REDIS_IMAGE=pgbot-local/redis PYTHON_IMAGE=pgbot-local/python
elif [[ $# -gt 0 ]]; then
    echo "usage: $0 [--offline]" >&2
    exit 2
fi
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
else
    echo "compose-smoke: neither 'docker compose' nor docker-compose is installed" >&2
    exit 2
fi

project="pgbot-smoke-$$"
work=$(mktemp -d)
bot_token="xoxb-0-compose-smoke-$RANDOM"
signing_secret="smoke-signing-secret-$RANDOM"
cat > "$work/override.yml" <<YAML
services:
  pgbot:
    environment:
      SLACK_BOT_TOKEN: "$bot_token"
      SLACK_APP_TOKEN: ""
      OPENAI_API_KEY: ""
      PGBOT_SLACK__MODE: http
      PGBOT_SLACK__SIGNING_SECRET: "$signing_secret"
YAML
dc() { "${compose[@]}" -p "$project" -f docker-compose.yml -f "$work/override.yml" "$@"; }
cleanup() {
    dc down -v --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
http() {  # http URL -> prints "STATUS BODY" (curl if present, else python3)
    if command -v curl >/dev/null; then
        curl -s -m 10 -o "$work/body" -w '%{http_code}' "$1" || true
    else
        python3 - "$1" "$work/body" <<'PY'
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
except OSError:
    status, body = 0, b""
open(sys.argv[2], "wb").write(body)
print(status, end="")
PY
    fi
    printf ' %s' "$(tr '\n' ' ' < "$work/body" 2>/dev/null)"
}
elapsed() { echo $(( $(date +%s) - $1 ))s; }

step "compose config"
dc config -q

step "build"
t=$(date +%s)
dc build -q pgbot
image_bytes=$(docker image inspect pgbot:local --format '{{.Size}}')
echo "built pgbot:local in $(elapsed "$t"), $(( image_bytes / 1000000 )) MB"
[[ "$(docker run --rm --entrypoint id pgbot:local -u)" == 10001 ]] || fail "the image does not run as uid 10001"
docker run --rm --entrypoint sh pgbot:local -c 'for c in gcc cc make; do command -v $c && exit 1; done; exit 0' \
    >/dev/null || fail "build tools left in the image"
docker run --rm --entrypoint pg_dump pgbot:local --version

step "up: postgres, redis, pgbot healthy"
t=$(date +%s)
dc up -d
for _ in $(seq 1 60); do
    states=$(for s in postgres redis pgbot; do docker inspect -f '{{.State.Health.Status}}' "$(dc ps -q "$s")"; done)
    [[ "$(echo "$states" | sort -u)" == healthy ]] && break
    sleep 2
done
dc ps
[[ "$(echo "$states" | sort -u)" == healthy ]] || { dc logs --tail 50; fail "not all healthy: $states"; }
echo "all healthy after $(elapsed "$t")"

step "/healthz and /readyz on 9108"
healthz=$(http http://127.0.0.1:9108/healthz); echo "/healthz: $healthz"
[[ "$healthz" == 200* ]] || fail "/healthz: $healthz"
readyz=""
for _ in $(seq 1 15); do readyz=$(http http://127.0.0.1:9108/readyz); [[ "$readyz" == 200* ]] && break; sleep 1; done
echo "/readyz: $readyz"
[[ "$readyz" == 200* ]] || fail "/readyz: $readyz"
metrics=$(http http://127.0.0.1:9108/metrics)
[[ "$metrics" == *'pgbot_db_pool_connections{database="shop"}'* ]] || fail "/metrics lacks the pool gauge"

step "demo --load-sample, then slash commands through pgbot ask"
dc run --rm -T pgbot demo --load-sample < /dev/null > "$work/demo.out"
dc run --rm -T pgbot ask "/tables" > "$work/tables.out"
grep -q "public.orders" "$work/tables.out" || { cat "$work/tables.out"; fail "/tables does not list orders"; }
dc run --rm -T pgbot ask "/sql SELECT count(*) AS n FROM customers" --format json > "$work/sql.out"
grep -q '"rows": \[\[200\]\]' "$work/sql.out" || { cat "$work/sql.out"; fail "/sql count(*) is not 200"; }
echo "ok: /tables lists the sample shop, /sql counts 200 customers"
if dc run --rm -T pgbot ask "how many orders?" > "$work/nollm.out" 2>&1; then fail "ask without a model exited 0"; fi
grep -q "No language model is configured" "$work/nollm.out" || { cat "$work/nollm.out"; fail "no-model hint missing"; }

step "backup create (pg_dump in the image against the compose server, into the pgbotdata volume)"
dc run --rm -T pgbot backup create --yes > "$work/backup.out" 2>&1 || { cat "$work/backup.out"; fail "backup create"; }
tail -n 3 "$work/backup.out"
dc run --rm -T pgbot backup list > "$work/list.out" 2>&1 || { cat "$work/list.out"; fail "backup list"; }

step "SIGTERM: compose stop pgbot"
t=$(date +%s)
dc stop pgbot
container=$(dc ps -q pgbot)
code=$(docker inspect -f '{{.State.ExitCode}}' "$container")
dc logs --no-color pgbot > "$work/pgbot.log" 2>&1
echo "stopped in $(elapsed "$t"), exit code $code"
[[ "$code" == 0 ]] || fail "pgbot exited $code on SIGTERM"
grep -q '"shutdown_started"' "$work/pgbot.log" || fail "no shutdown_started in the logs"
grep -q '"shutdown_finished"' "$work/pgbot.log" || fail "no shutdown_finished in the logs"
! grep -q -e "$bot_token" -e "$signing_secret" "$work/pgbot.log" || fail "a token appears in the logs"

step "down -v"
dc down -v --remove-orphans
echo "compose smoke: all checks passed"
