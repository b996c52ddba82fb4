#!/usr/bin/env bash
# Make sure the local PostgreSQL and Redis the tests use are up (start them if installed but stopped).
set -uo pipefail

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! redis_up && command -v redis-server >/dev/null 2>&1; then
  echo "starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
for _ in $(seq 1 20); do
  if pg_up && redis_up; then exit 0; fi
  sleep 0.5
done
pg_up || echo "warning: PostgreSQL is not reachable on 127.0.0.1:5432; its tests will fail" >&2
redis_up || echo "warning: Redis is not reachable on 127.0.0.1:6379; its tests will fail" >&2
exit 0
