import logging

from django.db import DatabaseError, connection
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


@never_cache
def healthz(request):
    """200 "ok" when this process can reach its database, else 503, so a load balancer
    stops sending traffic to an instance that cannot serve it.

    One `SELECT 1` on the request's usual connection (kept open between requests by
    CONN_MAX_AGE): the cheapest view that says something true, and the benchmarks'
    baseline for pages.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        logger.warning("Health check: the database did not answer: %s", error)
        return HttpResponse("database unavailable", content_type="text/plain", status=503)
    return HttpResponse("ok", content_type="text/plain")
