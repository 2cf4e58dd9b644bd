# Stand-in for python:3.11-slim built from Debian packages only (for hosts that reach a Debian mirror but not
# Docker Hub). Same layout as the official image where deploy/Dockerfile relies on it: `python` and `pip` on
# PATH in /usr/local/bin, the venv module, CA certificates, no build tools.
ARG BASE=pgbot-local/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3-pip ca-certificates netbase tzdata \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/lib/python3.11/EXTERNALLY-MANAGED \
 && ln -s /usr/bin/python3.11 /usr/local/bin/python \
 && ln -s /usr/bin/python3.11 /usr/local/bin/python3 \
 && ln -s /usr/bin/pip3 /usr/local/bin/pip
# The building host's CA bundle (scripts/offline-images.sh copies it in): pip inside the build then trusts
# whatever TLS-inspecting proxy that host trusts. Debian's bundle is a subset of it.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
