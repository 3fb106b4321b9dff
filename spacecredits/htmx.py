"""Rendering a page or, for htmx, only the partial it asked for."""

from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def render_page_or_part(
    request, template: str, context: dict, *, partials: set[str], status: int = 200
):
    """The whole page, or only the `{% partialdef %}` named like the element htmx targets
    (HX-Target) when it is one of `partials`. Page and part share a URL, so the response
    varies on those headers."""
    target = request.htmx.target if request.htmx else None
    name = f"{template}#{target}" if target in partials else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response
