#!/usr/bin/env bash
# `make test`: the whole suite on SQLite, then again on PostgreSQL when one is reachable.
# TEST_DATABASE_URL names the PostgreSQL server (default: postgres@127.0.0.1:5432/portal_test).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test || exit 1
py=.venv/bin/python
pg_url="${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/portal_test}"

passed=0; failed=0; skipped=0
count() {  # the number before $1 on pytest's closing line
  grep -Eo "[0-9]+ $1" <<<"$2" | head -n1 | cut -d' ' -f1
}

run_suite() {  # $1 = label; remaining args go to pytest
  local label=$1; shift
  echo "=== Test suite on $label ==="
  local log; log=$(mktemp)
  "$py" -m pytest "$@" | tee "$log"
  local rc=${PIPESTATUS[0]}
  [ $rc -eq 5 ] && { echo "No tests were collected on $label." >&2; rc=1; }
  local closing; closing=$(grep -E "[0-9]+ (passed|failed|error)" "$log" | tail -n1)
  rm -f "$log"
  passed=$((passed + $(count passed "$closing" || echo 0) + 0))
  failed=$((failed + $(count failed "$closing" || echo 0) + $(count error "$closing" || echo 0) + 0))
  skipped=$((skipped + $(count skipped "$closing" || echo 0) + 0))
  [ $rc -ne 0 ] && [ "$failed" -eq 0 ] && failed=1  # a crash without a count still fails
  return $rc
}

TEST_DATABASE_URL= run_suite SQLite "$@"; sqlite_rc=$?

if "$py" - "$pg_url" <<'PY' 2>/dev/null
import sys, psycopg
from sqlalchemy.engine import make_url
url = make_url(sys.argv[1])
psycopg.connect(host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres",
                dbname="postgres", connect_timeout=3).close()
PY
then
  TEST_DATABASE_URL="$pg_url" run_suite "PostgreSQL ($pg_url)" "$@"; pg_rc=$?
  pg_note="PostgreSQL: $([ $pg_rc -eq 0 ] && echo passed || echo FAILED)"
else
  pg_rc=0
  pg_note="PostgreSQL: not reachable at $pg_url, skipped (CI always runs it)"
fi

echo "=== SQLite: $([ $sqlite_rc -eq 0 ] && echo passed || echo FAILED); $pg_note ==="
echo "total: $passed passed, $failed failed, $skipped skipped"
[ $sqlite_rc -eq 0 ] && [ $pg_rc -eq 0 ]
