"""The API's contract: pydantic models, from which /api/v1/openapi.json is generated."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Amount = str  # a decimal string with two places, "-" for debits: "12.50", "-5.00"

AMOUNT_FIELD = {
    "description": "Credits as a decimal string with two places (negative for debits).",
    "pattern": r"^-?\d+\.\d{2}$",
    "examples": ["12.50"],
}
AMOUNT_IN = {
    "description": "Credits, more than 0 and at most 1,000,000, with at most 2 decimal "
    "places, as a decimal string.",
    "examples": ["12.50"],
}
CUSTOMER_ID = {"description": "`user_<id>` or `company_<id>`.", "examples": ["user_42"]}

CreditKind = Literal["admin_allocation", "purchase_allocation", "subscription_allocation"]
ChargeKind = Literal["booking", "admin_charge"]
TransactionType = Literal[
    "admin_allocation",
    "admin_charge",
    "expiration",
    "subscription_allocation",
    "subscription_expiration",
    "purchase_allocation",
    "booking",
    "refund",
    "reversal",
    "transfer_in",
    "transfer_out",
]


class Problem(BaseModel):
    """An error, as RFC 9457 application/problem+json."""

    type: str = Field(examples=["urn:spacecredits:problem:insufficient_credits"])
    title: str
    status: int
    detail: str
    errors: dict[str, list[str]] | None = Field(
        None, description="For invalid values: field -> messages."
    )
    available: Amount | None = Field(
        None,
        description="For insufficient credits: what can be spent.",
        pattern=AMOUNT_FIELD["pattern"],
    )
    remaining: Amount | None = Field(
        None,
        description="For a member's monthly limit: what is left of it this month.",
        pattern=AMOUNT_FIELD["pattern"],
    )


class Bucket(BaseModel):
    expires_on: dt.date | None = Field(description="Usable through this day; null: never.")
    amount: Amount = Field(**AMOUNT_FIELD)


class CustomerSummary(BaseModel):
    id: str = Field(**CUSTOMER_ID)
    type: Literal["user", "company"]
    name: str
    email: str | None
    balance: Amount = Field(**AMOUNT_FIELD)


class Customer(CustomerSummary):
    available: Amount = Field(
        description="Balance minus active holds.", pattern=AMOUNT_FIELD["pattern"]
    )
    held: Amount = Field(
        description="Credits held for future bookings.", pattern=AMOUNT_FIELD["pattern"]
    )
    buckets: list[Bucket] = Field(description="The balance by expiration, soonest first.")


class LotUse(BaseModel):
    lot_id: int
    amount: Amount = Field(**AMOUNT_FIELD)
    expires_on: dt.date | None


class Transaction(BaseModel):
    id: int
    customer_id: str = Field(**CUSTOMER_ID)
    type: TransactionType
    amount: Amount = Field(**AMOUNT_FIELD)
    balance_after: Amount = Field(**AMOUNT_FIELD)
    memo: str
    created_at: dt.datetime
    expires_on: dt.date | None = Field(description="For additions: the lot's expiration.")
    actor: str | None = Field(
        description="Who made it: an admin's name, `API: <key name>`, or null (the system)."
    )
    lots: list[LotUse] = Field(
        description="For additions the lots it created; for deductions, charges, expiries "
        "and transfers out what it took from each; for refunds and reversals that give "
        "credits back the lots it gave them back to (a new one when the lot had expired)."
    )
    reverses: int | None = Field(description="For a reversal: the transaction it undoes.")
    refunded_charge: int | None = Field(description="For a refund: the booking it refunds.")
    hold_id: int | None = Field(description="For a booking that captured a hold: the hold.")
    on_behalf_of: str | None = Field(description="The member a company was charged for.")


class Transfer(BaseModel):
    transfer_out: Transaction = Field(description="The `transfer_out` of the source.")
    transfer_in: Transaction = Field(description="The `transfer_in` of the target (`to`).")


HoldStatus = Literal["held", "captured", "released", "expired"]


class Hold(BaseModel):
    id: int
    customer_id: str = Field(**CUSTOMER_ID)
    amount: Amount = Field(**AMOUNT_FIELD)
    status: HoldStatus
    expires_at: dt.datetime = Field(description="When the credits are freed unless captured.")


class Ping(BaseModel):
    api_key: str = Field(description="The name of the key the request was made with.")
    scope: Literal["read", "write"]


class CustomerList(BaseModel):
    data: list[CustomerSummary]
    next_cursor: str | None


class TransactionList(BaseModel):
    data: list[Transaction]
    next_cursor: str | None


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddCredits(Input):
    amount: str = Field(**AMOUNT_IN)
    expires_on: dt.date | None = Field(None, description="Last day of use; null: never.")
    memo: str = Field("", description="Plain text, at most 500 characters.")
    type: CreditKind = "admin_allocation"


class Charge(Input):
    amount: str = Field(**AMOUNT_IN)
    memo: str = Field("", description="Plain text, at most 500 characters.")
    type: ChargeKind = "booking"
    on_behalf_of: str | None = Field(
        None, description="For a company: the member (`user_<id>`) it is charged for."
    )


MEMO_IN = {"description": "Plain text, at most 500 characters."}


class HoldCredits(Input):
    amount: str = Field(**AMOUNT_IN)
    expires_at: AwareDatetime = Field(
        description="When the hold ends (ISO 8601 with offset), in the future.",
        examples=["2026-06-01T18:00:00+02:00"],
    )
    memo: str = Field("", **MEMO_IN)


class CaptureHold(Input):
    amount: str | None = Field(
        None, description="At most the held amount (null: all of it); the rest is freed."
    )
    memo: str = Field("", **MEMO_IN)


class Refund(Input):
    amount: str | None = Field(
        None, description="At most what is left to refund of the booking (null: all of it)."
    )
    memo: str = Field("", **MEMO_IN)


class Reverse(Input):
    memo: str = Field("", **MEMO_IN)


class TransferCredits(Input):
    to: str = Field(description="The customer (`user_<id>` or `company_<id>`) who receives.")
    amount: str = Field(**AMOUNT_IN)
    memo: str = Field("", **MEMO_IN)


class TransactionFilters(BaseModel):
    type: TransactionType | None = None
    created_gte: AwareDatetime | None = None
    created_lt: AwareDatetime | None = None
    limit: int = Field(25, ge=1, le=100)
    cursor: str | None = Field(None, max_length=100)


class CustomerFilters(BaseModel):
    type: Literal["user", "company"] | None = None
    q: str = Field("", max_length=100)
    limit: int = Field(25, ge=1, le=100)
    cursor: str | None = Field(None, max_length=100)
