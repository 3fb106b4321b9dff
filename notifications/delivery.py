"""One delivery mechanism for everything the app sends: emails and webhooks.

A delivery is a row that says what to send and where it stands: a status (pending, sent,
failed, off), the attempts made, the last error, when it was sent, and `next_attempt_at`,
when it is next due. Rows are written in the transaction of the change they report (the
outbox); the request that writes them never talks to the broker. docs/delivery.md says
why, and what each failure costs.

- The writer marks a pending row due at once (its `next_attempt_at`, the writer's clock).
  It notifies nobody: PostgreSQL's NOTIFY takes one database-wide lock at commit, held
  through the commit's WAL flush, so every notifying transaction would commit one at a
  time (docs/delivery.md, "Why the relay polls").
- The relay (`python manage.py relay_deliveries`, `run` below) looks for due rows every
  POLL_SECONDS: it claims them in batches (`FOR UPDATE SKIP LOCKED`, so two relays never
  claim one row), moves each one's `next_attempt_at` a lease ahead (LEASE) and hands them
  to the broker, one Celery task per TASK_BATCH rows.
- The task (`deliver`) holds an advisory lock on each of its rows, reads them at once,
  sends each still pending through its channel's sender (one session, an SMTP connection,
  for the batch) and records each outcome as it goes: sent; or a failed attempt, due
  again after the backoff (10, 20, 40 ... s, at most 300 s); or, after the last attempt,
  failed, which staff can "send again" (`retry_failed`).
- A crash anywhere (the web process after commit, the worker mid-task, the broker emptied,
  the relay itself) leaves the row pending with a lease that runs out: the relay's next
  poll after that claims it again. Nothing waits longer than LEASE + POLL_SECONDS after
  the crash is over; a delivery the broker refused (it is away) is due again in REPUBLISH.

A channel is a sender function and the row it reads (`Channel`, `register`): attempts,
backoff, lease, failure and "send again" are this module's, the same for all of them (a
channel may name its own backoff schedule, a condition on the rows the relay claims, and
a hook run with each outcome). The channels: email (notifications/services.py) and
webhook (api/webhook_delivery.py).
All times come from django.utils.timezone.now(), passed to the SQL (never the database's
now()), so tests move them with the app's clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection, models, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# How long a claimed delivery is left to its task before the relay hands it out again.
LEASE = dt.timedelta(seconds=30)
# A delivery the relay could not hand to the broker (it is away) is due again after this.
REPUBLISH = dt.timedelta(seconds=3)
# The relay claims at most this many rows of a channel per statement, and hands them to
# Celery in tasks of at most TASK_BATCH rows each (one SMTP session, one read of the rows).
BATCH = 500
TASK_BATCH = 20
# The relay looks for due rows this often: a claim that finds nothing is one index probe
# per channel (the partial index of pending rows), and a delivery waits POLL_SECONDS / 2
# on average before it is handed out; what a poll finds under load goes out in batches.
POLL_SECONDS = 0.1
# Attempts in all, and the backoff between them.
MAX_ATTEMPTS = 6
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 300


class GiveUp(Exception):  # noqa: N818 (a verdict, not an error of ours)
    """Raised by a sender for a delivery that no later attempt can send (an endpoint that
    is switched off, say): it is failed at once, and staff can still "send again"."""


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    OFF = "off", "Not sent (turned off)"


# A delivery that nothing more is tried for: sent, or failed for good.
DONE = (Status.SENT, Status.FAILED)


@dataclass(frozen=True)
class Channel:
    """How one kind of delivery is read and sent. The row's fields are named here, so a
    channel keeps the column names its model already has.

    `load(pks)` returns the rows with what `send` needs (those that exist); `session()` is
    a context manager for what a batch's sends share (an SMTP connection, an HTTP client);
    `send(row, session)` sends one row or raises (any exception is a failed attempt).
    `lock_space` is the first key of the advisory locks that make deliveries of one row
    run one at a time.

    Optional, per channel: `in_transaction=False` is for a sender that commits its own
    work as it goes (a grant to many, one transaction per grant, so its progress shows):
    it runs outside the attempt's transaction, the outcome is recorded after it, and it
    must take being run again (a crash between the two hands it out again).

    `backoff(attempts)`, the seconds before the next try after that many failed ones
    (retry_countdown by default); `claim_filter`, an SQL condition on the
    candidate row (`candidate.<column>`) that the relay claims only rows meeting (a
    channel that keeps an order leaves out rows waiting for an earlier one);
    `after_attempt(row, session, status, attempts, error)`, run in the transaction that
    records each attempt's outcome (error is the exception, or None when it was sent).
    """

    name: str
    model: type[models.Model]
    load: Callable[[list[int]], Iterable[models.Model]]
    send: Callable[[models.Model, object], None]
    lock_space: int
    session: Callable[[], AbstractContextManager] = nullcontext
    status: str = "status"
    attempts: str = "attempts"
    error: str = "error"
    sent_at: str = "sent_at"
    next_attempt_at: str = "next_attempt_at"
    max_attempts: int = MAX_ATTEMPTS
    in_transaction: bool = True
    backoff: Callable[[int], float] | None = None
    claim_filter: str = ""
    after_attempt: Callable[..., None] | None = None


_channels: dict[str, Channel] = {}


def register(channel: Channel) -> Channel:
    _channels[channel.name] = channel
    return channel


def channel(name: str) -> Channel:
    return _channels[name]


def channels() -> list[Channel]:
    return list(_channels.values())


def retry_countdown(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: 10, 20, 40, ... <= 300.

    NOTIFICATION_RETRY_BASE_SECONDS (setting) shortens the base for tests.
    """
    base = getattr(settings, "NOTIFICATION_RETRY_BASE_SECONDS", RETRY_BASE_SECONDS)
    return min(base * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS)


# --- Claiming (the relay) -------------------------------------------------------------


def _claim_sql(ch: Channel) -> str:
    table = connection.ops.quote_name(ch.model._meta.db_table)
    status, due = (connection.ops.quote_name(f) for f in (ch.status, ch.next_attempt_at))
    condition = f" AND ({ch.claim_filter})" if ch.claim_filter else ""
    return f"""
        WITH due AS (
            SELECT id FROM {table} AS candidate
            WHERE {status} = 'pending' AND {due} <= %(now)s{condition}
            ORDER BY {due}
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        )
        UPDATE {table} AS d SET {due} = %(lease_until)s
        FROM due WHERE d.id = due.id
        RETURNING d.id
    """  # noqa: S608 (names from our own models)


def claim(ch: Channel, *, limit: int = BATCH) -> list[int]:
    """Claim up to `limit` due deliveries of the channel: each is leased for LEASE (not
    due again until then). Commits before it returns, so their tasks see the lease."""
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_claim_sql(ch), {"now": now, "limit": limit, "lease_until": now + LEASE})
        return sorted(pk for (pk,) in cursor.fetchall())


def relay_due() -> int:
    """Claim every due delivery of every channel, batch by batch, and hand each to Celery
    (or, without a broker, run it here). Returns how many were handed out. A broker error
    propagates: what was claimed stays leased and is handed out again when the lease ends.
    """
    handed = 0
    for ch in channels():
        while ids := claim(ch):
            published = []
            try:
                _enqueue(ch, ids, published)
            except Exception:
                handed_out = set(published)
                _release(ch, [pk for pk in ids if pk not in handed_out])
                raise
            handed += len(ids)
            if len(ids) < BATCH:
                break
    return handed


def _enqueue(ch: Channel, ids: list[int], published: list[int]) -> None:
    from spacecredits.celery import app

    from .tasks import deliver

    batches = [ids[at : at + TASK_BATCH] for at in range(0, len(ids), TASK_BATCH)]
    if app.conf.task_always_eager:
        for batch in batches:
            deliver.apply((ch.name, batch))
            published.extend(batch)
        return
    # One connection for them all; no publish retries (the lease is the retry).
    with app.producer_or_acquire() as producer:
        for batch in batches:
            deliver.apply_async((ch.name, batch), producer=producer, retry=False)
            published.extend(batch)


def _release(ch: Channel, ids: list[int]) -> None:
    """What could not be handed to the broker is due again after REPUBLISH, not after the
    whole lease: the relay tries again soon, and the broker's return costs seconds."""
    if ids:
        ch.model.objects.filter(pk__in=ids, **{ch.status: Status.PENDING}).update(
            **{ch.next_attempt_at: timezone.now() + REPUBLISH}
        )


def relay_after_commit() -> None:
    """Without a broker (make demo, the tests), hand the due deliveries out in this process
    once the surrounding transaction commits: the relay's own code, tasks run eagerly. With
    a broker, nothing: the relay process finds them at its next poll."""
    from spacecredits.celery import app

    if app.conf.task_always_eager:
        transaction.on_commit(relay_due, robust=True)


# --- Delivering (the task) ------------------------------------------------------------


def deliver(name: str, pks) -> dict[int, tuple[str, str]]:
    """Send a batch of deliveries of one channel, each unless it was sent already.
    Returns {pk: (status, error)}.

    The batch holds a session advisory lock on each row while it works (`_hold`); a row
    another task holds is left to that task ("pending", nothing sent here), so a delivery
    claimed twice sends once and no worker waits for another's slow server. The rows are
    read in one query, sent one by one over one connection of the channel (one SMTP
    session for the batch), and each outcome is committed with its send: sent; or a failed
    attempt, due again after the backoff; or, after the channel's last attempt, failed.
    The status is "pending" with an error when it will be tried again.
    """
    ch = channel(name)
    pks = sorted({int(pk) for pk in ([pks] if isinstance(pks, int) else pks)})
    outcomes = {pk: (Status.PENDING, "") for pk in pks}  # left to the task that holds it
    held = _hold(ch, pks)
    try:
        rows = {row.pk: row for row in ch.load(held)} if held else {}
        with ch.session() as session:
            for pk in held:
                row = rows.get(pk)
                status = getattr(row, ch.status) if row is not None else "missing"
                if status != Status.PENDING:
                    outcomes[pk] = (status, "")
                else:
                    outcomes[pk] = _attempt(ch, row, session)
    finally:
        _let_go(ch, held)
    return outcomes


def _attempt(ch: Channel, row, session) -> tuple[str, str]:
    """One attempt at one row, and its outcome, in one transaction (unless the channel's
    sender commits its own work)."""
    now = timezone.now()
    attempts = getattr(row, ch.attempts) + 1
    atomic = transaction.atomic if ch.in_transaction else nullcontext
    with atomic():
        try:
            with atomic():  # A database sink's error rolls back only this.
                ch.send(row, session)
        except Exception as error:  # Any failure of the channel counts.
            failure = error
            message = f"{type(error).__name__}: {error}"[:2000]
            failed = attempts >= ch.max_attempts or isinstance(error, GiveUp)
            status, sent_at = (Status.FAILED if failed else Status.PENDING), None
            backoff = ch.backoff or retry_countdown
            due = None if failed else now + dt.timedelta(seconds=backoff(attempts))
            logger.warning(
                "%s delivery %s failed (attempt %s): %s", ch.name, row.pk, attempts, message
            )
        else:
            failure = None
            status, sent_at, message, due = Status.SENT, now, "", None
        with connection.cursor() as cursor:
            cursor.execute(_outcome_sql(ch), [status, attempts, message, sent_at, due, row.pk])
        if ch.after_attempt:
            ch.after_attempt(row, session, status, attempts, failure)
    return status, message


def _outcome_sql(ch: Channel) -> str:
    q = connection.ops.quote_name
    return f"""
        UPDATE {q(ch.model._meta.db_table)}
        SET {q(ch.status)} = %s, {q(ch.attempts)} = %s, {q(ch.error)} = %s,
            {q(ch.sent_at)} = COALESCE(%s, {q(ch.sent_at)}), {q(ch.next_attempt_at)} = %s
        WHERE id = %s
    """  # noqa: S608 (names from our own models)


def _hold(ch: Channel, pks: list[int]) -> list[int]:
    """Take the rows' advisory locks that no other session holds; returns their ids.

    Session locks, not the rows' locks: a mail server may take up to EMAIL_TIMEOUT to
    answer, and meanwhile a member marking the notification read (or the relay claiming
    other rows) must not wait. A crash ends the session and so frees them. (Two ids that
    share the lock's second key, ids 2**31 - 1 apart, count as one.)
    """
    if not pks:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k FROM unnest(%s::bigint[]) AS k"
            " WHERE pg_try_advisory_lock(%s, (k %% 2147483647)::integer) ORDER BY k",
            [pks, ch.lock_space],
        )
        return [pk for (pk,) in cursor.fetchall()]


def _let_go(ch: Channel, pks: list[int]) -> None:
    if pks:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_unlock(%s, (k %% 2147483647)::integer)"
                " FROM unnest(%s::bigint[]) AS k",
                [ch.lock_space, pks],
            )


def retry_failed(name: str, pks, *, sent_too: bool = False) -> int:
    """Staff's "send again": failed deliveries (and sent ones with `sent_too`) back to
    pending, with fresh attempts, due now. Returns how many."""
    ch = channel(name)
    statuses = DONE if sent_too else (Status.FAILED,)
    rows = ch.model.objects.filter(pk__in=list(pks), **{f"{ch.status}__in": statuses})
    count = rows.update(
        **{ch.status: Status.PENDING, ch.attempts: 0, ch.next_attempt_at: timezone.now()}
    )
    if count:
        relay_after_commit()
    return count


# --- The relay process --------------------------------------------------------------


class Schedule:
    """Celery beat's schedule run in this process (`manage.py rundemo`, which has no
    broker): an entry that runs every so often (a timedelta, seconds) runs at start and
    then at its interval; one at set times (a crontab) runs at those times."""

    def __init__(self, entries: dict):
        from celery import current_app
        from celery.schedules import schedule as interval

        current_app.loader.import_default_modules()
        self.tasks = current_app.tasks
        self.entries = []
        for name, entry in entries.items():
            when = entry["schedule"]
            at_start = isinstance(when, (int, float, dt.timedelta, interval))
            if isinstance(when, (int, float, dt.timedelta)):
                when = interval(when, app=current_app)
            due = time.monotonic() if at_start else self._next(when)
            self.entries.append([due, when, name, entry["task"]])

    @staticmethod
    def _next(when) -> float:
        """The monotonic time `when` is next due, counted from now."""
        return time.monotonic() + when.remaining_estimate(when.now()).total_seconds()

    def run_due(self) -> None:
        for entry in self.entries:
            due, when, name, task = entry
            if time.monotonic() >= due:
                try:
                    self.tasks[task].apply().get()
                except Exception:
                    logger.exception("Scheduled task %s failed", name)
                entry[0] = self._next(when)

    def seconds_to_next(self) -> float:
        if not self.entries:
            return float("inf")
        return max(0.0, min(due for due, *_ in self.entries) - time.monotonic())


def run(
    *,
    poll_seconds: float = POLL_SECONDS,
    schedule: Schedule | None = None,
    stop: threading.Event | None = None,
) -> None:
    """The relay: every `poll_seconds` hand out what is due (and run `schedule`'s due
    entries), until `stop` is set. A lost database connection or broker is waited out."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            handed = relay_due()
        except (DatabaseError, InterfaceError) as error:
            logger.warning("Relay: database unavailable (%s); connecting again in 1 s", error)
            connection.close()
            stop.wait(1)
            continue
        except Exception as error:  # The broker is away: the leases will run out.
            logger.warning(
                "Relay: could not hand deliveries to the broker (%s: %s); trying again within %s s",
                type(error).__name__,
                error,
                REPUBLISH.total_seconds(),
            )
            handed = 0
        if handed:
            logger.debug("Relay: handed out %s deliveries", handed)
        if schedule:
            schedule.run_due()
        wait = poll_seconds if schedule is None else min(poll_seconds, schedule.seconds_to_next())
        stop.wait(wait)
