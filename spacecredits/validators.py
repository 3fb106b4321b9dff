"""The one rule for text people type that others read: names, memos.

What is refused, and why:

- Line breaks (LF, CR, NEL, U+2028, U+2029 and the other `str.splitlines` boundaries) in
  a name: names are single-line, and a name goes into email subjects, where a line break
  ends the header.
- Control characters (Unicode category Cc: NUL, ESC, tab, C1 controls...): invisible,
  and NUL cannot even be stored in PostgreSQL. Memos, being plain text of several lines,
  keep LF, CR and tab.
- Format characters (Cf): the bidi controls (U+202A-U+202E, U+2066-U+2069, U+200E/F,
  U+061C), which show the rest of a line reversed, and the other invisible ones (BOM,
  soft hyphen, tags U+E0000-U+E007F). Except the zero-width non-joiner and joiner
  (U+200C, U+200D): Persian and Indic words and emoji sequences are spelt with them.
- Surrogates (Cs) and line/paragraph separators (Zl, Zp).

`one_line` turns any stored text into something that fits a single header line, for data
written before this rule or by a path that bypassed it.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError

LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
# Format characters that spell words in some scripts (ZWNJ) and emoji (ZWJ).
JOINERS = frozenset("\u200c\u200d")
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

ONE_LINE_MESSAGE = "Enter this on one line, without line breaks."


def _is_refused(char: str) -> bool:
    return unicodedata.category(char) in REFUSED_CATEGORIES and char not in JOINERS


def _refuse(char: str, *, single_line: bool) -> None:
    if single_line and char in LINE_BREAKS:
        raise ValidationError(ONE_LINE_MESSAGE, code="line_break")
    point = f"U+{ord(char):04X}"
    if unicodedata.category(char) == "Cc":
        raise ValidationError(f"Remove the control character {point}.", code="control")
    name = unicodedata.name(char, "")
    described = f"{point} ({name})" if name else point
    raise ValidationError(f"Remove the invisible character {described}.", code="invisible")


def validate_single_line(value: str) -> None:
    """A name: one line of visible text (see the module's docstring)."""
    for char in value:
        if _is_refused(char):
            _refuse(char, single_line=True)


def validate_plain_text(value: str, *, allowed: frozenset[str] = frozenset("\n\r\t")) -> None:
    """A memo: visible text, over several lines if it likes (LF, CR and tab allowed)."""
    for char in value:
        if char not in allowed and _is_refused(char):
            _refuse(char, single_line=False)


def one_line(text: str) -> str:
    """`text` on one line: every refused character and run of white space becomes one
    space. For email subjects, whatever the stored text holds."""
    return " ".join("".join(" " if _is_refused(char) else char for char in text).split())
