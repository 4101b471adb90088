"""CSV exports: one writer for every download, safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel and LibreOffice (CSV injection: a user named ``=HYPERLINK(...)`` in a disclosures export);
such text is written with a leading apostrophe, the OWASP advice, so it shows as text. Numbers
(a negative mean change) are written as they are.
"""

import csv
import io
import re
from collections.abc import Iterable, Sequence

from flask import Response

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def cell(value) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def to_csv(rows: Iterable[Sequence]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return buffer.getvalue()


def csv_download(name: str, header: Sequence[str], rows: Iterable[Sequence]) -> Response:
    """A CSV attachment ``name.csv`` with a header row."""
    return Response(
        to_csv([header, *rows]),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={name}.csv"},
    )
