"""Shared by the benchmarks: a fresh, empty database for one run."""

from pathlib import Path


def fresh_database(url: str | None, sqlite_path: Path) -> str:
    """A new SQLite file at sqlite_path when url is None; else the PostgreSQL database in url, recreated."""
    if url is None:
        return f"sqlite:///{sqlite_path}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    return parsed.render_as_string(hide_password=False)
