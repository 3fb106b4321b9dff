"""CSV export of transactions, streamed row by row (a spreadsheet opens it as is)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone

from . import selectors
from .models import CreditTransaction

HEADER = [
    "Date",
    "Type",
    "Memo",
    "Amount",
    "Balance after",
    "Expires on",
    "By",
    "Related",
    "Credits used or given back",
]
# Rows whose relations are read together (selectors.add_history_details).
DETAILS_CHUNK = 500
SPACE = "The space"


class _Echo:
    def write(self, value):
        return value


def _by(row: CreditTransaction, *, show_actor: bool) -> str:
    if row.actor_id is None:
        return "System"
    return row.actor.display_name if show_actor else SPACE


def csv_rows(rows: Iterable[CreditTransaction], *, show_actor: bool) -> Iterator[list[str]]:
    """Plain values: ISO dates, amounts as plain signed numbers (no thousands separator).

    Members (`show_actor=False`) never see an admin's name: an adjustment is by the space.
    """
    yield HEADER
    for row in _with_details(rows):
        yield [
            timezone.localtime(row.created_at).strftime("%Y-%m-%d %H:%M"),
            row.get_kind_display(),
            _neutralise_formula(row.memo),
            f"{row.amount:f}",
            f"{row.balance_after:f}",
            row.expires_on.isoformat() if row.expires_on else "",
            _neutralise_formula(_by(row, show_actor=show_actor)),
            _neutralise_formula("; ".join(relation.text for relation in row.relations)),
            row.lots_words,
        ]


def _with_details(rows: Iterable[CreditTransaction]) -> Iterator[CreditTransaction]:
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == DETAILS_CHUNK:
            yield from selectors.add_history_details(chunk)
            chunk = []
    if chunk:
        yield from selectors.add_history_details(chunk)


def _neutralise_formula(text: str) -> str:
    # A memo starting with = + - @ would run as a formula in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def stream_csv(rows, *, filename: str, show_actor: bool) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (
            writer.writerow(line)
            for line in csv_rows(rows.iterator(chunk_size=2000), show_actor=show_actor)
        ),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
