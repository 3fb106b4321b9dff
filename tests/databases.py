"""The test database as a DATABASE_URL, for a process or connection of its own."""

from urllib.parse import quote

from django.db import connection


def url_of_test_database() -> str:
    """A socket folder as host, as the embedded server has, is percent-encoded."""
    settings = connection.settings_dict
    password = f":{quote(settings['PASSWORD'], safe='')}" if settings["PASSWORD"] else ""
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    host = quote(settings["HOST"] or "", safe="")
    return f"postgres://{quote(settings['USER'])}{password}@{host}{port}/{settings['NAME']}"
