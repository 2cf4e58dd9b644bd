#!/bin/sh
# Gives pgbot's login role (10-pgbot-roles.sql) its password from PGBOT_DB_PASSWORD (docker-compose.yml), so
# the password lives in .env, not in a file. Runs once, on a new volume, after the .sql file.
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v pgbot_password="$PGBOT_DB_PASSWORD" <<'SQL'
ALTER ROLE pgbot PASSWORD :'pgbot_password';
SQL
