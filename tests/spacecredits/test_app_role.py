"""The application's database role (README, "Running it for real") runs the app but owns
no table, so it can neither TRUNCATE a ledger table nor turn its triggers off."""

from contextlib import contextmanager

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.utils import DatabaseError
from psycopg import sql

from credits import services
from credits.models import CreditAccount, CreditLot, CreditLotUsage, CreditTransaction
from tests.factories import UserFactory

LEDGER_TABLES = [
    model._meta.db_table for model in (CreditAccount, CreditTransaction, CreditLot, CreditLotUsage)
]
INSUFFICIENT_PRIVILEGE = "42501"


@pytest.fixture
def app_role(transactional_db, database_url):
    """A login role for this test database, given the app's grants by `grant_app_role`
    run as the tables' owner (the test's own superuser here)."""
    role = f"{connection.settings_dict['NAME']}_app"[:63]
    with psycopg.connect(database_url, autocommit=True) as owner:

        def drop():
            if owner.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                owner.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))

        drop()
        owner.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        try:
            call_command("grant_app_role", role=role, owner_url=database_url)
            yield role
        finally:
            connection.close()
            drop()


@contextmanager
def connected_as(role: str):
    """Django's own connection, logged in as `role` instead of the test's superuser."""
    settings = connection.settings_dict
    before = settings["USER"], settings["PASSWORD"]
    connection.close()
    settings["USER"], settings["PASSWORD"] = role, ""
    try:
        yield
    finally:
        connection.close()
        settings["USER"], settings["PASSWORD"] = before


def _refused(statement: str) -> str:
    with pytest.raises(DatabaseError) as refusal:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    return refusal.value.__cause__.sqlstate


def test_the_app_role_runs_the_ledger(app_role):
    with connected_as(app_role):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == app_role
        member = UserFactory()
        services.add_credits(member, 30, memo="Welcome")
        services.deduct_credits(member, 12, memo="Meeting room")
        assert CreditAccount.objects.get(user=member).balance == 18


@pytest.mark.parametrize("table", LEDGER_TABLES)
def test_the_app_role_cannot_truncate_or_disable_the_triggers_of_a_ledger_table(app_role, table):
    with connected_as(app_role):
        assert _refused(f"TRUNCATE {table} CASCADE") == INSUFFICIENT_PRIVILEGE
        assert _refused(f"ALTER TABLE {table} DISABLE TRIGGER ALL") == INSUFFICIENT_PRIVILEGE
        assert _refused(f"ALTER TABLE {table} OWNER TO CURRENT_USER") == INSUFFICIENT_PRIVILEGE
        # The superuser's way round every trigger is closed to it too.
        assert _refused("SET session_replication_role = replica") == INSUFFICIENT_PRIVILEGE
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_tables"
                " WHERE pg_has_role(current_user, tableowner, 'MEMBER')"
            )
            assert cursor.fetchone()[0] == 0


def test_grant_app_role_refuses_a_role_that_owns_the_tables(transactional_db, database_url):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="superuser|owns"):
        call_command(
            "grant_app_role", role=connection.settings_dict["USER"], owner_url=database_url
        )
