#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use (127.0.0.1:5432, trust auth) is running.
set -euo pipefail
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  exit 0
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "PostgreSQL is not installed; installing it from Debian's packages" >&2
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
  ver=$(ls /etc/postgresql | sort -V | tail -n1)
  sed -i 's/^\(host\|local\)\(.*\)\(scram-sha-256\|md5\|peer\)$/\1\2trust/' /etc/postgresql/"$ver"/main/pg_hba.conf
fi
ver=$(ls /etc/postgresql | sort -V | tail -n1)
pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 1
done
pg_isready -h 127.0.0.1 -p 5432
psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null
