#!/bin/sh
# Drop to the redis user and, for a bare `redis-server [--options]`, turn protected mode off (no config file
# means no password and every interface: the official image does the same).
set -eu
if [ "${1:-}" = "redis-server" ]; then
    shift
    set -- redis-server --protected-mode no "$@"
fi
if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
