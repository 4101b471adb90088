#!/usr/bin/env bash
# `make test` (and CI, through .ci/run): the whole suite on SQLite, then again on PostgreSQL.
#
# First it provides what the suites need, where this machine lets it: Debian's Chromium (browser
# tests), nginx (the two-host test), Node.js and npm (the single sign-on tests' OpenID provider,
# tests/oidc), the PostgreSQL client tools (backups), a running local PostgreSQL and Redis. As root
# with apt-get it installs what is missing; otherwise it says what is. It ends with a loud block
# naming every suite that could not run here and why, then the totals. With CI set (.ci/run), a
# suite that could not run fails the run instead of being listed only.
# TEST_DATABASE_URL names the PostgreSQL server (default: postgres@127.0.0.1:5432/portal_test).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test || exit 1
py=.venv/bin/python
pg_url="${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/portal_test}"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
missing=()  # "what could not run: why (how to fix)"

# --- what the suites need ---------------------------------------------------------------------

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_install() {  # packages...; quiet, with one `apt-get update` retry
  can_install || return 1
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$@" >/dev/null 2>&1; }
}
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's Chromium for the browser tests ..."
  apt_install chromium ||
    missing+=("browser tests (tests/browser): no /usr/bin/chromium (apt-get install chromium)")
fi
if ! have nginx; then
  echo "Installing nginx for the two-host test ..."
  apt_install nginx ||
    missing+=("two-host test (tests/ops/test_two_hosts.py): no nginx (apt-get install nginx)")
fi
if ! have pg_dump; then
  apt_install postgresql-client ||
    missing+=("PostgreSQL backups (tests/ops/test_backup.py on PostgreSQL): no pg_dump (apt-get install postgresql-client)")
fi
if ! have node || ! have npm; then  # tests/sso starts a real OpenID provider (tests/oidc/provider.mjs)
  echo "Installing Node.js and npm for the single sign-on tests ..."
  { apt_install nodejs npm && have node && have npm; } ||
    missing+=("single sign-on tests (tests/sso, tests/browser sign-in): no Node.js/npm (apt-get install nodejs npm)")
fi

# Redis on 127.0.0.1:6379 (rate limits shared by hosts, readiness, the two-host test).
redis_up() { "$py" -c 'import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(("127.0.0.1",6379)))'; }
if ! redis_up; then
  have redis-server || { echo "Installing Redis ..."; apt_install redis-server; }
  if have redis-server; then
    mkdir -p /tmp/portal-test-redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /tmp/portal-test-redis --logfile /tmp/portal-test-redis/redis.log >/dev/null 2>&1
    for _ in $(seq 20); do redis_up && break; sleep 0.5; done
  fi
  redis_up || missing+=("Redis tests (rate limits across hosts, readiness, two hosts): nothing on 127.0.0.1:6379 (apt-get install redis-server)")
fi

# PostgreSQL: start the local cluster if one is installed and down (pg_ctlcluster needs root).
pg_up() {
  "$py" - "$pg_url" <<'PY' 2>/dev/null
import sys, psycopg
from sqlalchemy.engine import make_url
url = make_url(sys.argv[1])
psycopg.connect(host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres",
                password=url.password, dbname="postgres", connect_timeout=3).close()
PY
}
if ! pg_up && have pg_ctlcluster && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
  echo "Starting the local PostgreSQL ..."
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
  for _ in $(seq 30); do pg_up && break; sleep 1; done
fi

# --- the suites ------------------------------------------------------------------------------------

passed=0; failed=0; skipped=0
count() {  # the number before $1 on pytest's closing line
  grep -Eo "[0-9]+ $1" <<<"$2" | head -n1 | cut -d' ' -f1
}

run_suite() {  # $1 = label, $2 = log file; remaining args go to pytest
  local label=$1 log=$2; shift 2
  echo "=== Test suite on $label ==="
  "$py" -m pytest "$@" | tee "$log"
  local rc=${PIPESTATUS[0]}
  [ $rc -eq 5 ] && { echo "No tests were collected on $label." >&2; rc=1; }
  local closing; closing=$(grep -E "[0-9]+ (passed|failed|error)" "$log" | tail -n1)
  passed=$((passed + $(count passed "$closing" || echo 0) + 0))
  failed=$((failed + $(count failed "$closing" || echo 0) + $(count error "$closing" || echo 0) + 0))
  skipped=$((skipped + $(count skipped "$closing" || echo 0) + 0))
  [ $rc -ne 0 ] && [ "$failed" -eq 0 ] && failed=1  # a crash without a count still fails
  return $rc
}

TEST_DATABASE_URL= run_suite SQLite "$logs/sqlite.log" "$@"; sqlite_rc=$?

if pg_up; then
  TEST_DATABASE_URL="$pg_url" run_suite "PostgreSQL ($pg_url)" "$logs/postgresql.log" "$@"; pg_rc=$?
  pg_note="PostgreSQL: $([ $pg_rc -eq 0 ] && echo passed || echo FAILED)"
elif [ -n "${CI:-}" ]; then
  pg_rc=1
  pg_note="PostgreSQL: NOT REACHABLE at $pg_url (CI must run it)"
else
  pg_rc=0
  pg_note="PostgreSQL: not reachable at $pg_url, skipped (CI always runs it)"
  missing+=("the whole PostgreSQL pass: nothing answers at $pg_url (install and start PostgreSQL with trust for 127.0.0.1, or set TEST_DATABASE_URL)")
fi

# --- what did not run, loudly ------------------------------------------------------------------------

# pytest -ra: "SKIPPED [3] tests/x.py:12: reason", summed per file and reason.
skips=$(cat "$logs"/*.log 2>/dev/null | sed -nE 's/^SKIPPED \[([0-9]+)\] ([^:]+)(:[0-9]+)?: (.*)$/\1\t\2: \4/p' |
  awk -F'\t' '{n[$2] += $1} END {for (k in n) printf "%5d  %s\n", n[k], k}' | sort -rn)
if [ ${#missing[@]} -gt 0 ] || [ -n "$skips" ]; then
  echo
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  for note in "${missing[@]}"; do echo "!!! NOT RUN HERE: $note"; done
  if [ -n "$skips" ]; then
    echo "!!! Skipped by the tests themselves (count, file: reason):"
    sed 's/^/!!!   /' <<<"$skips"
  fi
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
fi

echo "=== SQLite: $([ $sqlite_rc -eq 0 ] && echo passed || echo FAILED); $pg_note ==="
echo "total: $passed passed, $failed failed, $skipped skipped"
if [ -n "${CI:-}" ] && [ ${#missing[@]} -gt 0 ]; then
  echo "CI: ${#missing[@]} suite(s) could not run on this machine (listed above): failing the run." >&2
  exit 1
fi
[ $sqlite_rc -eq 0 ] && [ $pg_rc -eq 0 ]
