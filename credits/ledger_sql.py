"""The ledger's SQL, kept in `credits/sql/*.sql` and read from there by the services, the
migrations, the tests and `bench/`: each rule that lives in SQL has one text.

A migration applies a file with `apply("post_adjustment.sql", digest="...")`, naming the
digest (`version()`) of the text it was written for. The files are written to be applied
again (CREATE OR REPLACE, DROP ... IF EXISTS), so a change to one is a diff to the file
plus a two-line migration that applies it again with the new digest; a test fails while
the newest migration of a file names another digest than the file's (a forgotten one).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent / "sql"


@cache
def read(name: str) -> str:
    return (SQL_DIR / name).read_text()


def version(name: str) -> str:
    """A short digest of the file's text. Statements prepared on a connection carry it, so
    a changed function gets a new prepared statement instead of a stale plan's error."""
    return hashlib.sha256(read(name).encode()).hexdigest()[:12]


class ApplySQLFile(migrations.RunSQL):
    """RunSQL of a file's text, remembering which file and which version of it."""

    def __init__(self, name: str, digest: str, reverse_sql=migrations.RunSQL.noop):
        self.file, self.digest = name, digest
        super().__init__(read(name), reverse_sql=reverse_sql)


def apply(name: str, *, digest: str, reverse_sql=migrations.RunSQL.noop) -> ApplySQLFile:
    """The migration operation that (re)applies the file."""
    return ApplySQLFile(name, digest, reverse_sql=reverse_sql)
