"""The credit ledger.

A customer (a user or a company) has one `CreditAccount`. Every addition creates a
`CreditLot`; every change of the balance appends a `CreditTransaction`; every deduction or
expiry records, in `CreditLotUsage`, how much it took from each lot. Transactions and
usages are never edited or deleted; a lot's `remaining` is the only value that changes,
and it always equals the lot's amount minus its usages.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q

from customers.models import Company
from notifications.delivery import Status as DeliveryStatus


class TransactionKind(models.TextChoices):
    ADMIN_ALLOCATION = "admin_allocation", "Added by admin"
    ADMIN_CHARGE = "admin_charge", "Deducted by admin"
    EXPIRATION = "expiration", "Expired"
    # Reserved for plans, packages and bookings.
    SUBSCRIPTION_ALLOCATION = "subscription_allocation", "Added by plan"
    SUBSCRIPTION_EXPIRATION = "subscription_expiration", "Expired at plan renewal"
    PURCHASE_ALLOCATION = "purchase_allocation", "Purchased"
    BOOKING = "booking", "Booking"
    REFUND = "refund", "Refund"
    # The ledger's other verbs (services.reverse_transaction, transfer_credits).
    REVERSAL = "reversal", "Reversal"
    TRANSFER_IN = "transfer_in", "Transfer in"
    TRANSFER_OUT = "transfer_out", "Transfer out"


# The kinds something in the app records today, and so the kinds the transactions pages
# offer as filters: a kind joins this list when a code path records it (the public API
# records purchases, plan allocations and bookings; the other reserved kinds are accepted
# by services.grant_credits and charge_credits, but nothing calls them with those yet).
RECORDED_KINDS = (
    TransactionKind.ADMIN_ALLOCATION,
    TransactionKind.ADMIN_CHARGE,
    TransactionKind.EXPIRATION,
    TransactionKind.PURCHASE_ALLOCATION,
    TransactionKind.SUBSCRIPTION_ALLOCATION,
    TransactionKind.BOOKING,
    TransactionKind.REFUND,
    TransactionKind.REVERSAL,
    TransactionKind.TRANSFER_IN,
    TransactionKind.TRANSFER_OUT,
)


# Kinds that add credits (positive amount, create a lot) and kinds that take them away.
CREDIT_KINDS = frozenset(
    {
        TransactionKind.ADMIN_ALLOCATION,
        TransactionKind.SUBSCRIPTION_ALLOCATION,
        TransactionKind.PURCHASE_ALLOCATION,
        TransactionKind.REFUND,
    }
)
DEBIT_KINDS = frozenset(
    {
        TransactionKind.ADMIN_CHARGE,
        TransactionKind.EXPIRATION,
        TransactionKind.SUBSCRIPTION_EXPIRATION,
        TransactionKind.BOOKING,
    }
)

# What the database accepts by sign (a reversal is either: it undoes an addition or a
# deduction); CREDIT_KINDS and DEBIT_KINDS are what grant_credits and charge_credits take.
ADDING_KINDS = CREDIT_KINDS | {TransactionKind.TRANSFER_IN}
TAKING_KINDS = DEBIT_KINDS | {TransactionKind.TRANSFER_OUT}
# What reverse_transaction undoes, and what refund_charge refunds.
REVERSIBLE_KINDS = frozenset({TransactionKind.ADMIN_ALLOCATION, TransactionKind.ADMIN_CHARGE})
REFUNDABLE_KINDS = frozenset({TransactionKind.BOOKING})

AMOUNT = {"max_digits": 12, "decimal_places": 2}


class CreditAccount(models.Model):
    """One per customer; its row is the lock every change of the customer's credits takes.

    `balance` is the ledger balance: the `balance_after` of the newest transaction. The
    balance a person sees is computed from the lots (see selectors.get_balance), so it is
    right also before the expiry sweep has written a due expiration.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credit_account",
    )
    company = models.OneToOneField(
        Company, null=True, blank=True, on_delete=models.PROTECT, related_name="credit_account"
    )
    balance = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    held = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        default=0,
        db_default=0,  # accounts are opened by a trigger (open_accounts.sql)
        help_text="Credits of the balance that active holds earmark (derived from the holds).",
    )
    next_hold_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="The soonest expires_at of the active holds."
    )
    last_seq = models.PositiveBigIntegerField(default=0)
    last_transaction_at = models.DateTimeField(
        null=True, blank=True, help_text="created_at of the newest transaction."
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(user__isnull=False, company__isnull=True)
                    | Q(user__isnull=True, company__isnull=False)
                ),
                name="account_one_owner",
            ),
            models.CheckConstraint(condition=Q(balance__gte=0), name="account_balance_gte_0"),
            # Available (balance - held) never below zero.
            models.CheckConstraint(
                condition=Q(held__gte=0) & Q(held__lte=F("balance")),
                name="account_held_within_balance",
            ),
        ]

    def __str__(self):
        return str(self.customer)

    @property
    def customer(self):
        return self.user if self.user_id else self.company


class CreditTransaction(models.Model):
    """An immutable ledger row. For each account, in `seq` order:
    previous balance_after + amount = balance_after."""

    account = models.ForeignKey(
        CreditAccount,
        on_delete=models.PROTECT,
        related_name="transactions",
        db_index=False,  # transaction_account_seq (account, seq) serves every lookup
    )
    seq = models.PositiveBigIntegerField(help_text="Position in the account's history, from 1.")
    kind = models.CharField(max_length=32, choices=TransactionKind.choices)
    amount = models.DecimalField(**AMOUNT, help_text="Signed: positive adds, negative takes.")
    balance_after = models.DecimalField(max_digits=14, decimal_places=2)
    memo = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The admin who made it; empty for the system.",
        db_index=False,  # transaction_actor, which leaves out the system's rows
    )
    created_at = models.DateTimeField()
    expires_on = models.DateField(null=True, blank=True, help_text="For additions: expiry date.")
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    # Relations of the ledger's other verbs (docs/ledger.md, "The other verbs").
    reverses = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversed_by",
        help_text="For a reversal: the row it undoes (a row is reversed at most once).",
    )
    refunded_charge = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="refunds",
        help_text="For a refund: the charge it gives back (wholly or in part).",
    )
    transfer_out = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="transfer_in",
        help_text="For a transfer in: the other customer's transfer out.",
    )
    hold = models.OneToOneField(
        "CreditHold",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="capture",
        help_text="For a booking that captured a hold: the hold.",
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # transaction_on_behalf_of (account, member, created_at)
        help_text="For a company's charge: the member it was for (and their refunds).",
    )
    batch = models.ForeignKey(
        "CreditBatch",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="transactions",
        db_index=False,  # transaction_batch, which leaves out rows of no batch
    )

    class Meta:
        ordering = ["-seq"]
        permissions = [("adjust_balance", "Can adjust customers' credit balances")]
        constraints = [
            models.UniqueConstraint(fields=["account", "seq"], name="transaction_account_seq"),
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="transaction_idempotency_key",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=sorted(ADDING_KINDS), amount__gt=0)
                    | Q(kind__in=sorted(TAKING_KINDS), amount__lt=0)
                    | (Q(kind=TransactionKind.REVERSAL) & ~Q(amount=0))
                ),
                name="transaction_amount_sign_by_kind",
            ),
            models.CheckConstraint(
                condition=(Q(kind=TransactionKind.REVERSAL) & Q(reverses__isnull=False))
                | (~Q(kind=TransactionKind.REVERSAL) & Q(reverses__isnull=True)),
                name="transaction_reversal_reverses",
            ),
            models.CheckConstraint(
                condition=Q(refunded_charge__isnull=True) | Q(kind=TransactionKind.REFUND),
                name="transaction_refund_of_charge",
            ),
            models.CheckConstraint(
                condition=(Q(kind=TransactionKind.TRANSFER_IN) & Q(transfer_out__isnull=False))
                | (~Q(kind=TransactionKind.TRANSFER_IN) & Q(transfer_out__isnull=True)),
                name="transaction_transfer_in_has_its_out",
            ),
            models.CheckConstraint(
                condition=Q(hold__isnull=True) | Q(kind=TransactionKind.BOOKING),
                name="transaction_hold_captured_by_booking",
            ),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="transaction_balance_after_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(expires_on__isnull=True) | Q(amount__gt=0),
                name="transaction_expiry_only_on_additions",
            ),
        ]
        indexes = [
            # Type filter on the transactions page, newest first.
            models.Index(fields=["account", "kind", "-seq"], name="transaction_account_kind"),
            # Date-range filter on the transactions page.
            models.Index(fields=["account", "created_at"], name="transaction_account_created"),
            # An admin's rows (and the check before deleting a user): most rows, from plans,
            # bookings and the sweep, have no actor, and skip this index.
            models.Index(
                fields=["actor"], condition=Q(actor__isnull=False), name="transaction_actor"
            ),
            # A member's charges of a company this month (the monthly limit).
            models.Index(
                fields=["account", "on_behalf_of", "created_at"],
                condition=Q(on_behalf_of__isnull=False),
                name="transaction_on_behalf_of",
            ),
            models.Index(
                fields=["batch"], condition=Q(batch__isnull=False), name="transaction_batch"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount:+} ({self.created_at:%Y-%m-%d})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Ledger transactions are append-only and cannot be edited.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Ledger transactions are append-only and cannot be deleted.")

    @property
    def shows_expiry(self) -> bool:
        """An addition of its own credits, with its own expiration (a reversal, refund or
        transfer in gives back or brings credits with their own dates)."""
        return (
            self.amount > 0
            and self.kind
            not in (
                TransactionKind.REVERSAL,
                TransactionKind.TRANSFER_IN,
            )
            and not self.refunded_charge_id
        )

    @property
    def reversed_noun(self) -> str:
        """'addition' or 'deduction': what a reversal of this row undoes."""
        return "addition" if self.amount > 0 else "deduction"

    @property
    def lot(self):
        """The lot an addition created (a transfer in creates one per expiration date and
        a refund or reversal a grace lot at most: see `lots`)."""
        return self.lots.order_by("pk").first()


class CreditLot(models.Model):
    """Credits added at one time, with one expiration (or none)."""

    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="lots")
    allocation = models.ForeignKey(
        CreditTransaction,
        on_delete=models.PROTECT,
        related_name="lots",
        help_text="The transaction that added these credits (a transfer in adds one lot"
        " per expiration date; a refund or reversal a grace lot).",
    )
    amount = models.DecimalField(**AMOUNT)
    remaining = models.DecimalField(**AMOUNT)
    expires_on = models.DateField(
        null=True, blank=True, help_text="Usable through the end of this day; empty: never."
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = [F("expires_on").asc(nulls_last=True), "created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="lot_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("amount")),
                name="lot_remaining_within_amount",
            ),
        ]
        indexes = [
            # Only lots that still hold credits: balance, breakdown, deduction order and the
            # expiry sweep read this index, whose size does not grow with history.
            models.Index(
                fields=["account", "expires_on", "created_at", "id"],
                condition=Q(remaining__gt=0),
                name="lot_open_by_expiry",
            ),
            models.Index(
                fields=["expires_on"], condition=Q(remaining__gt=0), name="lot_open_expiring"
            ),
        ]

    def __str__(self):
        when = f"expires {self.expires_on:%d %b %Y}" if self.expires_on else "never expires"
        return f"{self.remaining} of {self.amount} ({when})"


class CreditLotUsage(models.Model):
    """How much one deduction or expiry took from one lot."""

    transaction = models.ForeignKey(
        CreditTransaction,
        on_delete=models.PROTECT,
        related_name="usages",
        db_index=False,  # lot_usage_unique (transaction, lot) serves every lookup
    )
    lot = models.ForeignKey(CreditLot, on_delete=models.PROTECT, related_name="usages")
    amount = models.DecimalField(**AMOUNT)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="lot_usage_amount_gt_0"),
            models.UniqueConstraint(fields=["transaction", "lot"], name="lot_usage_unique"),
        ]

    def __str__(self):
        return f"{self.amount} from lot {self.lot_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Lot usages are append-only and cannot be edited.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Lot usages are append-only and cannot be deleted.")


class CreditLotReturn(models.Model):
    """How much a reversal or refund gave back to a lot that a deduction or charge took it
    from. When that lot's date had passed, the credits went into `grace_lot` instead (a
    new lot of the same transaction, CREDITS_REFUND_GRACE_DAYS days long) and `lot`
    keeps only the record of where they came from."""

    transaction = models.ForeignKey(
        CreditTransaction, on_delete=models.PROTECT, related_name="returns", db_index=False
    )
    lot = models.ForeignKey(CreditLot, on_delete=models.PROTECT, related_name="returns")
    amount = models.DecimalField(**AMOUNT)
    grace_lot = models.ForeignKey(
        CreditLot, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="lot_return_amount_gt_0"),
            models.UniqueConstraint(fields=["transaction", "lot"], name="lot_return_unique"),
        ]

    def __str__(self):
        return f"{self.amount} back to lot {self.grace_lot_id or self.lot_id}"


class HoldStatus(models.TextChoices):
    HELD = "held", "Held"
    CAPTURED = "captured", "Captured"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


class CreditHold(models.Model):
    """Credits earmarked for a future booking until `expires_at`. While held they are taken
    from their lots (so they neither expire nor are spent) and counted in the account's
    `held`; capture charges them as a booking, release or expiry gives them back."""

    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="holds")
    amount = models.DecimalField(**AMOUNT)
    captured = models.DecimalField(**AMOUNT, default=0)
    status = models.CharField(max_length=16, choices=HoldStatus.choices, default=HoldStatus.HELD)
    expires_at = models.DateTimeField()
    memo = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(captured__gte=0) & Q(captured__lte=F("amount")),
                name="hold_captured_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(status__in=HoldStatus.values), name="hold_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=HoldStatus.CAPTURED) | Q(captured=0),
                name="hold_captured_only_when_captured",
            ),
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="hold_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(
                fields=["account", "expires_at"],
                condition=Q(status="held"),
                name="hold_active",
            ),
        ]

    def __str__(self):
        status = self.get_status_display().lower()
        return f"{self.amount} {status} until {self.expires_at:%Y-%m-%d %H:%M}"


class CreditHoldLot(models.Model):
    """How much one hold earmarked from one lot (taken from its remaining while held)."""

    hold = models.ForeignKey(
        CreditHold, on_delete=models.PROTECT, related_name="lots", db_index=False
    )
    lot = models.ForeignKey(CreditLot, on_delete=models.PROTECT, related_name="holds")
    amount = models.DecimalField(**AMOUNT)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_lot_amount_gt_0"),
            models.UniqueConstraint(fields=["hold", "lot"], name="hold_lot_unique"),
        ]

    def __str__(self):
        return f"{self.amount} of lot {self.lot_id} held"


class BatchStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class CreditBatch(models.Model):
    """One grant to many customers (services.grant_to_many): the same addition to each
    account of `account_ids`, each an adjustment keyed by the batch, so running it again
    adds nothing twice. Its transactions are its progress and its result.

    It is also its own outbox row: its run is a delivery of the "credit_batch" channel
    (notifications.delivery; services.CREDIT_BATCH), with the `run_*` fields as its
    delivery state, so the request that records it never calls the broker, and a run lost
    to a crash is handed out again."""

    idempotency_key = models.CharField(max_length=100, unique=True)
    amount = models.DecimalField(**AMOUNT)
    expires_on = models.DateField(null=True, blank=True)
    memo = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    account_ids = ArrayField(models.BigIntegerField())
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    # The run's delivery (notifications.delivery): due at `next_run_at`, leased while a
    # worker runs it, "sent" once it ran to its end, "failed" after its last attempt.
    run_status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    run_attempts = models.PositiveSmallIntegerField(default=0)
    run_error = models.TextField(blank=True, help_text="The last error of a run.")
    ran_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="batch_amount_gt_0"),
        ]
        indexes = [
            # The relay's question, every few seconds: which batches are due to run?
            models.Index(
                fields=["next_run_at"], condition=Q(run_status="pending"), name="batch_run_due"
            ),
        ]

    def __str__(self):
        return f"Grant of {self.amount} to {len(self.account_ids)} customers"

    @property
    def total(self) -> int:
        return len(self.account_ids)

    @property
    def is_running(self) -> bool:
        """Waiting or running, and not given up on (its run's last attempt failed)."""
        return (
            self.status in (BatchStatus.PENDING, BatchStatus.RUNNING)
            and self.run_status == DeliveryStatus.PENDING
        )

    @property
    def has_stopped(self) -> bool:
        return self.status == BatchStatus.FAILED or self.run_status == DeliveryStatus.FAILED

    @property
    def problem(self) -> str:
        """Why the batch stopped: a grant refused, or its run's last error."""
        if self.error:
            return self.error
        return self.run_error if self.run_status == DeliveryStatus.FAILED else ""

    @property
    def idempotency_key_of_grants(self) -> str:
        """The key each of the batch's additions carries on its account."""
        return f"batch:{self.pk}"
