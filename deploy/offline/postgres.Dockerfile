# Stand-in for postgres:16 built from Debian packages (bookworm ships PostgreSQL 15). Its entrypoint honours the
# official image's POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB and PGDATA on first start; host connections
# need the password (scram-sha-256), local ones (pg_isready, psql in the container) are trusted.
ARG BASE=pgbot-local/debian:bookworm
FROM ${BASE}
RUN mkdir -p /etc/postgresql-common \
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
