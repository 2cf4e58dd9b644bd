# Stand-in for redis:7 built from Debian packages (bookworm ships Redis 7.0): `redis-server` and `redis-cli` on
# PATH, data in /data, and, like the official image, protected mode off when started without a config file
# so that other containers on the compose network can connect.
ARG BASE=pgbot-local/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
