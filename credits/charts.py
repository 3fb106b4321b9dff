"""A small server-rendered SVG chart of a balance over time (no JavaScript, no library)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

WIDTH = 600
HEIGHT = 140
PADDING_TOP = 10


@dataclass(frozen=True)
class BalanceChart:
    """What the template draws: SVG path data in a WIDTH x HEIGHT box, and words."""

    line: str
    area: str
    top: Decimal
    first_day: dt.date
    last_day: dt.date
    start: Decimal
    end: Decimal
    width: int = WIDTH
    height: int = HEIGHT


def balance_chart(history: list[tuple[dt.date, Decimal]]) -> BalanceChart:
    """A step line through (day, balance) points: the balance holds until the next change."""
    values = [balance for _, balance in history]
    top = max(values) if max(values) > 0 else Decimal(1)
    step = WIDTH / max(len(history) - 1, 1)

    def y(value: Decimal) -> float:
        return round(HEIGHT - float(value / top) * (HEIGHT - PADDING_TOP), 1)

    commands = [f"M0,{y(values[0])}"]
    for index, (previous, value) in enumerate(zip(values, values[1:], strict=False), start=1):
        if value != previous:
            commands.append(f"H{round(index * step, 1)}V{y(value)}")
    commands.append(f"H{WIDTH}")
    line = "".join(commands)
    return BalanceChart(
        line=line,
        area=f"{line}V{HEIGHT}H0Z",
        top=max(values),
        first_day=history[0][0],
        last_day=history[-1][0],
        start=values[0],
        end=values[-1],
    )
