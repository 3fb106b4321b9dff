from decimal import Decimal

from django.core.exceptions import ValidationError

from spacecredits.formats import format_credits


class InsufficientCredits(ValidationError):
    """A deduction asked for more than the customer's balance. Nothing was written."""

    def __init__(self, available: Decimal, requested: Decimal | None = None):
        self.available = available
        self.requested = requested
        if available == 0:
            message = "No credits are available."
        elif available == 1:
            message = "Only 1 credit is available."
        else:
            message = f"Only {format_credits(available)} are available."
        super().__init__(message, code="insufficient_credits")


class IdempotencyConflict(ValidationError):
    """The idempotency key was already used for an adjustment with different content."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(
            "This request key was already used for a different adjustment.",
            code="idempotency_conflict",
        )


class CreditLimitExceeded(ValidationError):
    """A charge of a company on behalf of a member would take the member past their
    monthly limit. `.remaining` is what is left of it this month. Nothing was written."""

    def __init__(self, remaining: Decimal, requested: Decimal | None = None):
        self.remaining = remaining
        self.requested = requested
        if remaining == 0:
            message = "Nothing is left of this member's monthly limit."
        else:
            verb = "is" if remaining == 1 else "are"
            message = (
                f"Only {format_credits(remaining)} {verb} left of this member's monthly limit."
            )
        super().__init__(message, code="credit_limit_exceeded")
