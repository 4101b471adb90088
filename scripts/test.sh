#!/usr/bin/env bash
# `make test`: the whole suite on SQLite, then again on PostgreSQL when one is reachable.
# TEST_DATABASE_URL names the PostgreSQL server (default: postgres@127.0.0.1:5432/portal_test).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test || exit 1
py=.venv/bin/python
pg_url="${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/portal_test}"

run_suite() {  # $1 = label; remaining args go to pytest
  local label=$1; shift
  echo "=== Test suite on $label ==="
  "$py" -m pytest "$@"
  local rc=$?
  [ $rc -eq 5 ] && { echo "No tests were collected on $label." >&2; rc=1; }
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
[ $sqlite_rc -eq 0 ] && [ $pg_rc -eq 0 ]
