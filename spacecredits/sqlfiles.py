"""SQL that is code, kept in an app's `sql/*.sql` files and read from there by its services,
its migrations, the tests and `bench/`: each rule that lives in SQL has one text.

A migration applies a file with `files.apply("post_adjustment.sql", digest="...")`, naming
the digest (`version()`) of the text it was written for. The files are written to be
applied again (CREATE OR REPLACE, DROP ... IF EXISTS), so a change to one is a diff to the
file plus a two-line migration that applies it again with the new digest;
tests/test_sql_files.py fails while the newest migration of a file names another digest
than the file's (a forgotten migration).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from django.db import migrations


class ApplySQLFile(migrations.RunSQL):
    """RunSQL of a file's text, remembering which file and which version of it.

    Only the migration that names the file's current digest runs it: an older one was
    written for an older text, and the current text may need tables or columns that only
    later migrations make (a trigger names its columns when it is created). The newest
    migration of each file names its current digest (tests/test_sql_files.py), so a
    fresh database gets each file once, when its schema is there.
    """

    def __init__(self, files: SQLFiles, name: str, digest: str, reverse_sql):
        self.files, self.file, self.digest = files, name, digest
        super().__init__(files.read(name), reverse_sql=reverse_sql)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if self.files.version(self.file) == self.digest:
            super().database_forwards(app_label, schema_editor, from_state, to_state)


class SQLFiles:
    """The `sql/` folder beside `module_file` (pass an app module's `__file__`)."""

    def __init__(self, module_file: str):
        self.directory = Path(module_file).resolve().parent / "sql"

    def names(self) -> list[str]:
        return sorted(path.name for path in self.directory.glob("*.sql"))

    @cache  # noqa: B019 - one instance per app, alive as long as the process
    def read(self, name: str) -> str:
        return (self.directory / name).read_text()

    def version(self, name: str) -> str:
        """A short digest of the file's text. Statements prepared on a connection carry
        it, so a changed function gets a new prepared statement instead of a stale plan's
        error."""
        return hashlib.sha256(self.read(name).encode()).hexdigest()[:12]

    def apply(self, name: str, *, digest: str, reverse_sql=migrations.RunSQL.noop):
        """The migration operation that (re)applies the file."""
        return ApplySQLFile(self, name, digest, reverse_sql)
