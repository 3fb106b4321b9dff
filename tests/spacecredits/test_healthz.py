"""`/healthz` says "ok" only when the database answers (a load balancer trusts it)."""

import socket

import pytest
from django.db import connection


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
def test_healthz_answers_ok_with_one_query_when_the_database_answers(
    client, django_assert_num_queries
):
    with django_assert_num_queries(1):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


def test_healthz_answers_503_when_the_database_cannot_be_reached(
    client, django_db_blocker, monkeypatch
):
    # A real failed connection: the same settings, pointed at a port nothing listens on.
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", _closed_port())
    with django_db_blocker.unblock():
        connection.close()
        try:
            response = client.get("/healthz")
        finally:
            connection.close()
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
    assert b"ok" not in response.content


@pytest.mark.django_db
def test_healthz_is_not_redirected_to_https(client, settings):
    """A load balancer may probe over plain http while every page redirects to https."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/login/").status_code == 301
    assert client.get("/healthz").status_code == 200
