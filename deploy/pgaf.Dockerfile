# PostgreSQL 15 with pg_auto_failover, for docker-compose.yml's `ha` profile. The official
# image carries the PGDG apt repository, which packages pg_auto_failover for each major.
FROM postgres:15
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15-auto-failover \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT []
