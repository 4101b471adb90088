"""One clock: the portal reads time only through portal.core.time."""

import re
from pathlib import Path

import portal

# The host's calendar or wall clock; the portal's "today" is the practice's (practice_today).
HOST_CLOCK = re.compile(r"\bdate\.today\(|\bdatetime\.(now|today|utcnow)\(|\btime\.localtime\(")


def test_no_code_reads_the_hosts_calendar():
    root = Path(portal.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "time.py" or path.parent.name != "core"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if HOST_CLOCK.search(line.split("#")[0])
    ]
    assert offenders == []


def test_the_pattern_finds_what_it_is_for():
    assert all(HOST_CLOCK.search(s) for s in ("x = date.today()", "datetime.now(UTC).date()", "datetime.utcnow()"))
    assert not any(HOST_CLOCK.search(s) for s in ("practice_today()", "now_utc()", "consent.effective_on"))
