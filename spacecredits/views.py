from django.http import HttpResponse
from django.views.decorators.cache import never_cache


@never_cache
def healthz(request):
    """The process is up and serving requests (for load balancers, and the benchmarks'
    baseline: the cheapest view the app can answer)."""
    return HttpResponse("ok", content_type="text/plain")
