#!/usr/bin/env bash
# Start a throw-away Redis on 127.0.0.1:6379 when nothing answers there (tests use it).
set -euo pipefail
ping() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
if ping; then
  echo "redis: answering on 127.0.0.1:6379"
  exit 0
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis: nothing on 127.0.0.1:6379 and no redis-server installed" >&2
  exit 1
fi
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
  --dir "${TMPDIR:-/tmp}" --logfile "${TMPDIR:-/tmp}/mqs-test-redis.log"
for _ in $(seq 50); do ping && { echo "redis: started"; exit 0; }; sleep 0.1; done
echo "redis: failed to start" >&2
exit 1
