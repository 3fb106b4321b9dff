"""Give the application's database role what the app needs and nothing more.

Two roles run the app (README, "Running it for real"): the owner, which owns the tables
and runs the migrations (DATABASE_OWNER_URL), and the application role the processes
connect as (DATABASE_URL). Only a table's owner (or a superuser) may TRUNCATE it without a
grant, ALTER it, or disable its triggers, so an application role that owns no table cannot
switch off the ledger's append-only triggers, whatever SQL it is tricked into running.

Run as the owner, after `migrate`: `make up` does both. Running it again is harmless.
"""

import os

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql

# What the app does with its tables and sequences; no TRUNCATE, REFERENCES or TRIGGER.
TABLE_PRIVILEGES = sql.SQL("SELECT, INSERT, UPDATE, DELETE")
SEQUENCE_PRIVILEGES = sql.SQL("USAGE, SELECT")

GRANTS = [
    # A fresh start each time, so a privilege granted by hand earlier does not linger.
    "REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}",
    "REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}",
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    "GRANT {tables} ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "GRANT {sequences} ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    # Tables and sequences the owner's later migrations create get the same grants.
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {tables} ON TABLES TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {sequences} ON SEQUENCES TO {role}",
]


class Command(BaseCommand):
    help = (
        "As the tables' owner (DATABASE_OWNER_URL), grant the application role (the user "
        "of DATABASE_URL) what the app needs: SELECT, INSERT, UPDATE, DELETE on tables, "
        "USAGE on sequences, also for tables created later. Refuses a role that is a "
        "superuser or owns a table."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--role", help="the application role (default: the user of DATABASE_URL)"
        )
        parser.add_argument(
            "--owner-url",
            help="a connection URL for the role that owns the tables (default: DATABASE_OWNER_URL)",
        )

    def handle(self, *args, role=None, owner_url=None, **options):
        role = role or settings.DATABASES["default"].get("USER")
        owner_url = owner_url or os.environ.get("DATABASE_OWNER_URL")
        if not role:
            raise CommandError("No application role: DATABASE_URL names no user.")
        if not owner_url:
            raise CommandError(
                "Set DATABASE_OWNER_URL: the role that owns the tables grants the "
                "application role (README, Running it for real)."
            )
        with psycopg.connect(owner_url) as owner:  # one transaction: all or nothing
            self.check_role(owner, role)
            names = {
                "role": sql.Identifier(role),
                "schema": sql.Identifier(owner.execute("SELECT current_schema()").fetchone()[0]),
                "tables": TABLE_PRIVILEGES,
                "sequences": SEQUENCE_PRIVILEGES,
            }
            for statement in GRANTS:
                owner.execute(sql.SQL(statement).format(**names))
        self.stdout.write(f"{role} may use the tables; it owns none of them.")

    def check_role(self, owner, role: str) -> None:
        found = owner.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        if found is None:
            raise CommandError(f"There is no role {role}: create it first (createuser {role}).")
        if found[0]:
            raise CommandError(
                f"{role} is a superuser, so it could disable any trigger: the app needs "
                "a role of its own."
            )
        (owned,) = owner.execute(
            """
            SELECT count(*) FROM pg_class
            WHERE relnamespace = current_schema()::regnamespace
              AND relkind IN ('r', 'p', 'S')
              AND pg_has_role(%s, relowner, 'MEMBER')
            """,
            [role],
        ).fetchone()
        if owned:
            raise CommandError(
                f"{role} owns (or is a member of a role that owns) {owned} tables or "
                "sequences, so it could disable their triggers: run the migrations as "
                "another role (DATABASE_OWNER_URL) and let the app connect as this one."
            )
