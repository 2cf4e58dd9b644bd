#!/usr/bin/env bash
# Build local stand-ins for python:3.11-slim, postgres:16 and redis:7 from Debian packages, for a host whose
# Docker daemon reaches a Debian mirror but not Docker Hub. They are tagged pgbot-local/{python,postgres,redis}
# and used by scripts/compose-smoke.sh --offline. Needs root (debootstrap) and a running dockerd.
# Differences from the real images: PostgreSQL 15 and Redis 7.0 (Debian bookworm's), Debian's Python 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if ! docker image inspect pgbot-local/debian:bookworm >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
    rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import - pgbot-local/debian:bookworm >/dev/null
fi
context=$(mktemp -d)
trap 'rm -rf "$context" ${rootfs:+"$rootfs"}' EXIT
cp deploy/offline/* "$context"/
cp /etc/ssl/certs/ca-certificates.crt "$context"/ca-certificates.crt
for name in python postgres redis; do
    docker build -q -t "pgbot-local/$name" -f "$context/$name.Dockerfile" "$context" >/dev/null
    echo "built pgbot-local/$name"
done
