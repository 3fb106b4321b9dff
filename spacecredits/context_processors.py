def navigation(request):
    """Which top-bar section the current page belongs to (for aria-current)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return {}
    if match.namespace in ("customers", "credits"):
        section = "customers"
    elif match.namespace == "member":
        section = "account" if match.url_name in ("account", "password-change") else "membership"
    else:
        section = match.namespace
    return {"nav_section": section}
