"""Database helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import connection

# After this many runs on one connection, psycopg prepares a statement run by a
# server_bound_cursor (Django's own cursors never prepare); None when
# settings.DATABASE_PREPARED_STATEMENTS is off, for poolers that cannot keep them.
PREPARE_THRESHOLD = 5


@contextmanager
def server_bound_cursor() -> Iterator:
    """A PostgreSQL cursor whose parameters the server binds, for the kinds of statement
    where Django's cursors (which quote every parameter into the SQL text) cost more than
    the statement: one run for every adjustment or every balance shown (prepared once per
    connection instead of parsed and planned each time) and inserts of tens of thousands
    of values (sent as binary arrays, placeholder `%b`). Queries are logged and errors
    translated as with Django's cursors.

    If a prepared statement's function ever changes its result columns, rename the function
    (a changed result type fails on connections that prepared the old one).
    """
    # What connection.cursor() does before it makes its cursor.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.connection.prepare_threshold = (
        PREPARE_THRESHOLD if settings.DATABASE_PREPARED_STATEMENTS else None
    )
    with connection.wrap_database_errors:
        raw = psycopg.Cursor(connection.connection)
    wrapped = (
        connection.make_debug_cursor(raw)
        if connection.queries_logged
        else connection.make_cursor(raw)
    )
    with wrapped as cursor:
        yield cursor
