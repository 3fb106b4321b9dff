class OwnerConverter:
    """Which kind of customer a URL is about: "users" or "companies" (`<owner:owner>`).

    Registered in CustomersConfig.ready(), before any urls module is loaded.
    """

    regex = "users|companies"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
