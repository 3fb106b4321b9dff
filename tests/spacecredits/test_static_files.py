"""Static files under content-hashed names with gzip copies (WhiteNoise's compressed
manifest storage), pages gzipped, a favicon (issue 15, item 5)."""

import gzip
import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

HASHED = r"[0-9a-f]{12}"


@pytest.fixture
def collected(tmp_path):
    """collectstatic as a release runs it, with the production storage, into tmp_path."""
    storages = settings.STORAGES | {"staticfiles": {"BACKEND": settings.STATIC_STORAGE}}
    with override_settings(STORAGES=storages, STATIC_ROOT=tmp_path):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield tmp_path


@pytest.mark.django_db
def test_collected_files_have_hashed_names_and_gzip_copies_served_for_a_year(collected):
    names = {path.name for path in (collected / "css").iterdir()}
    app_css = next(name for name in names if re.fullmatch(rf"app\.{HASHED}\.css", name))
    assert f"{app_css}.gz" in names
    assert (collected / "staticfiles.json").exists()

    client = Client()  # a new handler: WhiteNoise reads STATIC_ROOT when it starts
    page = client.get(reverse("login")).content.decode()
    assert f'href="/static/css/{app_css}"' in page
    assert re.search(rf'<link rel="icon" href="/static/img/favicon\.{HASHED}\.svg"', page)
    assert re.search(rf'src="/static/js/htmx\.min\.{HASHED}\.js"', page)

    response = client.get(f"/static/css/{app_css}", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "immutable" in response["Cache-Control"]
    assert b"SpaceCredits" in gzip.decompress(b"".join(response.streaming_content))

    # /favicon.ico, which browsers ask for on their own, leads to the hashed icon.
    favicon = client.get("/favicon.ico")
    assert favicon.status_code == 302
    assert re.fullmatch(rf"/static/img/favicon\.{HASHED}\.svg", favicon["Location"])


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["login", "customers:list", "member:membership"])
def test_pages_are_gzipped_for_a_client_that_takes_gzip(client, admin_user, url):
    if url != "login":
        client.force_login(admin_user)
    response = client.get(reverse(url), HTTP_ACCEPT_ENCODING="gzip, br")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response["Vary"]
    assert b"</html>" in gzip.decompress(response.content)

    plain = client.get(reverse(url))
    assert not plain.has_header("Content-Encoding")


@pytest.mark.django_db
def test_every_page_names_its_icon(client):
    page = client.get(reverse("login")).content.decode()
    assert '<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">' in page
