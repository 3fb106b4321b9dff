"""Helpers that read the ledger the way an auditor would, for assertions."""

from decimal import Decimal

from credits.models import (
    CreditAccount,
    CreditBatch,
    CreditHold,
    CreditHoldLot,
    CreditLot,
    CreditLotReturn,
    CreditLotUsage,
    CreditTransaction,
)
from notifications.models import Notification


def snapshot():
    """Every ledger row, as plain values: equal snapshots mean nothing was written."""
    return {
        "accounts": list(CreditAccount.objects.order_by("pk").values_list()),
        "transactions": list(CreditTransaction.objects.order_by("pk").values_list()),
        "lots": list(CreditLot.objects.order_by("pk").values_list()),
        "usages": list(CreditLotUsage.objects.order_by("pk").values_list()),
        "returns": list(CreditLotReturn.objects.order_by("pk").values_list()),
        "holds": list(CreditHold.objects.order_by("pk").values_list()),
        "hold_lots": list(CreditHoldLot.objects.order_by("pk").values_list()),
        "batches": list(CreditBatch.objects.order_by("pk").values_list()),
        "notifications": list(Notification.objects.order_by("pk").values_list("pk")),
    }


def breakdown_as_text(customer):
    from credits import selectors

    return [
        (expires_on.isoformat() if expires_on else "never", f"{amount:f}")
        for expires_on, amount in selectors.get_expiration_breakdown(customer)
    ]


def taken_from(transaction) -> dict[int, Decimal]:
    """{lot id: amount} that one deduction or expiry took."""
    return {usage.lot_id: usage.amount for usage in transaction.usages.all()}


def assert_chain_intact(account: CreditAccount):
    """previous balance_after + amount = balance_after, for every row, in seq order,
    and created_at never goes back."""
    previous = Decimal("0")
    previous_time = None
    seqs = []
    for row in account.transactions.order_by("seq"):
        assert previous + row.amount == row.balance_after, (row.seq, previous, row.amount)
        assert row.balance_after >= 0
        # History is in time order: date filters rely on it.
        assert previous_time is None or row.created_at >= previous_time, row.seq
        previous = row.balance_after
        previous_time = row.created_at
        seqs.append(row.seq)
    assert seqs == list(range(1, len(seqs) + 1))
    account.refresh_from_db()
    assert account.balance == previous
    assert account.last_seq == len(seqs)


def assert_lots_consistent(account: CreditAccount):
    """Each lot's remaining = amount - what usages took - what active holds earmark +
    what reversals and refunds gave back; never below 0. The account holds what its
    active holds earmark, never more than its balance."""
    held_total = Decimal("0")
    for lot in account.lots.all():
        used = sum((u.amount for u in lot.usages.all()), Decimal("0"))
        held = sum((h.amount for h in lot.holds.filter(hold__status="held")), Decimal("0"))
        returned = sum((r.amount for r in lot.returns.filter(grace_lot__isnull=True)), Decimal("0"))
        assert lot.remaining == lot.amount - used - held + returned, lot.pk
        assert 0 <= lot.remaining <= lot.amount
        held_total += held
    account.refresh_from_db()
    active = sum((h.amount for h in account.holds.filter(status="held")), Decimal("0"))
    assert account.held == active == held_total
    assert 0 <= account.held <= account.balance
