"""The ledger's SQL lives in credits/sql/*.sql: the database runs those texts, and each
change to a file comes with a migration that applies it again."""

import re

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from credits import ledger_sql

FUNCTION = re.compile(
    r"CREATE OR REPLACE FUNCTION (\w+)\(.*?\bAS \$\$(.*?)\$\$", re.DOTALL | re.IGNORECASE
)
TRIGGER = re.compile(r"^CREATE TRIGGER (\w+)", re.MULTILINE)
APPLIED_BY_MIGRATIONS = ["append_only.sql", "post_adjustment.sql"]


def functions_in(name: str) -> dict[str, str]:
    return dict(FUNCTION.findall(ledger_sql.read(name)))


@pytest.mark.django_db
@pytest.mark.parametrize("name", APPLIED_BY_MIGRATIONS)
def test_the_database_runs_the_functions_of_the_file(name):
    functions = functions_in(name)
    assert functions, f"{name} defines no function"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proname, prosrc FROM pg_proc WHERE proname = ANY(%s)", [list(functions)]
        )
        in_database = dict(cursor.fetchall())
    assert in_database == functions


@pytest.mark.django_db
def test_the_database_has_the_triggers_of_the_file():
    triggers = TRIGGER.findall(ledger_sql.read("append_only.sql"))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgname = ANY(%s) AND NOT tgisinternal",
            [triggers],
        )
        assert sorted(row[0] for row in cursor.fetchall()) == sorted(triggers)


def newest_application_of(name: str) -> tuple[str, str]:
    """(migration, digest) of the last credits migration that applies the file."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    newest = None
    for key in loader.graph.forwards_plan(loader.graph.leaf_nodes("credits")[0]):
        for operation in loader.graph.nodes[key].operations:
            if isinstance(operation, ledger_sql.ApplySQLFile) and operation.file == name:
                newest = (key[1], operation.digest)
    assert newest is not None, f"no migration applies {name}"
    return newest


@pytest.mark.parametrize("name", APPLIED_BY_MIGRATIONS)
def test_the_newest_migration_of_each_file_applies_its_text_as_it_is_now(name):
    migration, digest = newest_application_of(name)
    assert digest == ledger_sql.version(name), (
        f"credits/sql/{name} changed after migration {migration} applied it: add a migration"
        f' with ledger_sql.apply("{name}", digest="{ledger_sql.version(name)}")'
    )
