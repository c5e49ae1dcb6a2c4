"""The values one edit from a key, spelled out: pure string functions.

The one-edit pass (``matcher.near``) looks up exactly these, so they must be every value
a person may hold when the lead typed one character of theirs wrong: a substitution,
an adjacent transposition, a character left out (``one_edit_values``) or one added
(``insertion_values``: any character a normalized value can hold). Given the registry's
``KeyShapes``, only the values of a shape somebody holds are spelled out: the others
cannot be anybody's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

NEAR_KEY_TYPES: tuple[str, ...] = ("document", "phone")
NEAR_MIN_LENGTH = 6
"""dbt's ``near_match_min_length``: shorter editable parts are never near candidates."""
_DIGITS = "0123456789"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
NEAR_ALPHABETS: Mapping[str, str] = {"document": _DIGITS + _LETTERS, "phone": _DIGITS}
"""Every character the editable part of a normalized value can hold (``normalize``: a
document NUMBER is ASCII letters and digits upper-cased, a phone digits; neither starts
with 0): what a lead may have left out, so what ``insertion_values`` puts back."""


def editable_split(key_type: str, value: str, *, country_code: str) -> tuple[str, str] | None:
    """``(fixed prefix, editable part)`` of a key, as the dbt model splits it: the TYPE of a
    document stays, so does the country code of a phone; None for other countries' phones."""
    if key_type == "document":
        kind, _, number = value.partition(":")
        return f"{kind}:", number
    if key_type == "phone" and value.startswith(country_code):
        return country_code, value[len(country_code) :]
    return None


@dataclass(frozen=True)
class KeyShapes:
    """The shapes the registry's documents and phones come in (dbt's
    ``person_key_shapes``, plus the persons changed since the build): each ``(key type,
    document type or '' for a phone, length)`` somebody holds, and those whose numbers
    hold a letter. A value of another shape is nobody's, so it is never looked up."""

    held: frozenset[tuple[str, str, int]]
    lettered: frozenset[tuple[str, str, int]]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, int, bool]]) -> KeyShapes:
        """From ``(key_type, kind, value_length, has_letters)`` rows."""
        shapes = [(key_type, kind, length, letters) for key_type, kind, length, letters in rows]
        return cls(
            frozenset(shape[:3] for shape in shapes),
            frozenset(shape[:3] for shape in shapes if shape[3]),
        )

    def with_values(self, values: Iterable[tuple[str, str]]) -> KeyShapes:
        """These shapes and those of ``(key_type, value)`` pairs (the keys of the persons
        changed since the build, held now)."""
        added = [
            (key_type, shape_kind(key_type, value), len(value), has_letters(key_type, value))
            for key_type, value in values
            if key_type in NEAR_KEY_TYPES
        ]
        return KeyShapes(
            self.held | {shape[:3] for shape in added},
            self.lettered | {shape[:3] for shape in added if shape[3]},
        )

    def holds(self, key_type: str, value: str, length: int) -> bool:
        """Whether somebody holds a value of ``value``'s type and ``length``."""
        return (key_type, shape_kind(key_type, value), length) in self.held

    def holds_letters(self, key_type: str, value: str, length: int) -> bool:
        """Whether a number of ``value``'s type and ``length`` holds a letter."""
        return (key_type, shape_kind(key_type, value), length) in self.lettered


def shape_kind(key_type: str, value: str) -> str:
    """A key's kind of shape: the type of a document (``DNI`` of ``DNI:45678912``), ''
    for a phone."""
    return value.partition(":")[0] if key_type == "document" else ""


def has_letters(key_type: str, value: str) -> bool:
    """Whether a document's number holds a letter (never a phone)."""
    return key_type == "document" and any(char in _LETTERS for char in value.partition(":")[2])


def one_edit_values(
    key_type: str,
    value: str,
    *,
    country_code: str,
    min_length: int = NEAR_MIN_LENGTH,
    shapes: KeyShapes | None = None,
) -> tuple[str, ...]:
    """The values a person may hold when the lead typed one character of theirs wrong
    (a digit for a digit, a letter for a letter), swapped two neighbours or added one:
    ``value``'s editable part with one character substituted, adjacent characters swapped
    or one character left out (parts shorter than ``min_length`` left out), each only of
    a length ``shapes`` says somebody holds (every length without them). Empty when the
    key cannot be near-matched. The lead leaving a character out: ``insertion_values``."""
    split = editable_split(key_type, value, country_code=country_code)
    if split is None or key_type not in NEAR_KEY_TYPES:
        return ()
    prefix, part = split
    found: list[str] = []
    last = len(part) - 1
    same_length = len(part) >= min_length and (
        shapes is None or shapes.holds(key_type, value, len(value))
    )
    shorter = last >= min_length and (
        shapes is None or shapes.holds(key_type, value, len(value) - 1)
    )
    for at, char in enumerate(part):
        head, tail = prefix + part[:at], part[at + 1 :]
        if same_length:
            alphabet = _DIGITS if char in _DIGITS else _LETTERS if char in _LETTERS else ""
            found += [
                head + other + tail for other in alphabet if other != char and (at or other != "0")
            ]
            if at < last and part[at + 1] != char:
                found.append(head + part[at + 1] + char + part[at + 2 :])
        if shorter and (at == 0 or part[at - 1] != char):
            found.append(head + tail)  # a run of one character deletes to one value
    return tuple(found)


def insertion_values(
    key_type: str,
    value: str,
    *,
    country_code: str,
    min_length: int = NEAR_MIN_LENGTH,
    shapes: KeyShapes | None = None,
) -> tuple[str, ...]:
    """The values a person may hold when the lead left one of their characters out:
    ``value``'s editable part with one character of ``NEAR_ALPHABETS`` inserted at each
    position (never a 0 in front: normalized values never start with one), each value
    once (a character inserted next to the same character is the same value), parts
    shorter than ``min_length`` left out. With ``shapes``: none when nobody holds a value
    of that length, and digits only when no number of that length holds a letter (90
    values for an 8-digit DNI instead of 324). Empty when the key cannot be near-matched."""
    split = editable_split(key_type, value, country_code=country_code)
    if split is None or key_type not in NEAR_KEY_TYPES or len(split[1]) + 1 < min_length:
        return ()
    longer = len(value) + 1
    if shapes is not None and not shapes.holds(key_type, value, longer):
        return ()
    prefix, part = split
    alphabet = (
        _DIGITS
        if shapes is not None and not shapes.holds_letters(key_type, value, longer)
        else NEAR_ALPHABETS[key_type]
    )
    found: list[str] = []
    for at in range(len(part) + 1):
        head, tail = prefix + part[:at], part[at:]
        before = part[at - 1] if at else "0"  # no 0 in front; no repeat of the char before
        found += [head + char + tail for char in alphabet if char != before]
    return tuple(found)


def edit_kind(lead_value: str, person_value: str) -> str:
    """How the lead's value differs from the person's (they are one edit apart)."""
    if len(lead_value) > len(person_value):
        return "insertion"
    if len(lead_value) < len(person_value):
        return "deletion"
    differing = sum(left != right for left, right in zip(lead_value, person_value, strict=True))
    return "substitution" if differing == 1 else "transposition"
