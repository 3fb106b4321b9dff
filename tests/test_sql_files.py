"""SQL that is code lives in each app's sql/*.sql files: the database runs those texts,
and each change to a file comes with a migration that applies it again
(spacecredits/sqlfiles.py)."""

import re

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from api import sql_files as api_sql
from credits import ledger_sql
from notifications import sql_files as notification_sql
from spacecredits.sqlfiles import ApplySQLFile

FUNCTION = re.compile(
    r"CREATE OR REPLACE FUNCTION (\w+)\(.*?\)\s*(?:RETURNS \w+\s*)?AS \$\$(.*?)\$\$",
    re.DOTALL | re.IGNORECASE,
)
TRIGGER = re.compile(r"^CREATE (?:CONSTRAINT )?TRIGGER (\w+)", re.MULTILINE)
# Files a migration applies (the expiry statement is run by the services as it is).
APPLIED = [
    (ledger_sql.files, "credits", "append_only.sql"),
    (ledger_sql.files, "credits", "open_accounts.sql"),
    (ledger_sql.files, "credits", "post_adjustment.sql"),
    (ledger_sql.files, "credits", "verbs.sql"),
    (notification_sql.files, "notifications", "write_notifications.sql"),
    (api_sql.files, "api", "webhooks.sql"),
]
IDS = [name for _, _, name in APPLIED]


def test_every_sql_file_is_applied_or_run_as_it_is():
    listed = {(files.directory, name) for files, _, name in APPLIED}
    run_by_services = {
        (ledger_sql.files.directory, "expire_due_lots.sql"),
        (ledger_sql.files.directory, "expire_due_holds.sql"),
    }
    every = {
        (f.directory, n)
        for f in (ledger_sql.files, notification_sql.files, api_sql.files)
        for n in f.names()
    }
    assert every == listed | run_by_services


@pytest.mark.django_db
@pytest.mark.parametrize("files, app, name", APPLIED, ids=IDS)
def test_the_database_runs_the_functions_and_triggers_of_the_file(files, app, name):
    text = files.read(name)
    functions = dict(FUNCTION.findall(text))
    triggers = TRIGGER.findall(text)
    assert functions, f"{name} defines no function"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proname, prosrc FROM pg_proc WHERE proname = ANY(%s)", [list(functions)]
        )
        assert dict(cursor.fetchall()) == functions
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgname = ANY(%s) AND NOT tgisinternal",
            [triggers],
        )
        assert sorted(row[0] for row in cursor.fetchall()) == sorted(triggers)


def newest_application_of(app: str, name: str) -> tuple[str, str]:
    """(migration, digest) of the last migration of `app` that applies the file."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    newest = None
    for key in loader.graph.forwards_plan(loader.graph.leaf_nodes(app)[0]):
        for operation in loader.graph.nodes[key].operations:
            if isinstance(operation, ApplySQLFile) and operation.file == name:
                newest = (key[1], operation.digest)
    assert newest is not None, f"no migration of {app} applies {name}"
    return newest


@pytest.mark.parametrize("files, app, name", APPLIED, ids=IDS)
def test_the_newest_migration_of_each_file_applies_its_text_as_it_is_now(files, app, name):
    migration, digest = newest_application_of(app, name)
    assert digest == files.version(name), (
        f"{app}/sql/{name} changed after migration {migration} applied it: add a migration"
        f' with apply("{name}", digest="{files.version(name)}")'
    )
