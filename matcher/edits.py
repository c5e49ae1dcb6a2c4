"""The values one edit from a key, spelled out: pure string functions.

The one-edit pass (``matcher.near``) looks up exactly these, so they must be every value
a person may hold when the lead typed one character of theirs wrong: a substitution,
an adjacent transposition, a character left out (``one_edit_values``) or one added
(``insertion_values``: any character a normalized value can hold, digits only for a
document type that the registry's sample shows without letters, ``letterless_kinds``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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


def one_edit_values(
    key_type: str, value: str, *, country_code: str, min_length: int = NEAR_MIN_LENGTH
) -> tuple[str, ...]:
    """The values a person may hold when the lead typed one character of theirs wrong
    (a digit for a digit, a letter for a letter), swapped two neighbours or added one:
    ``value``'s editable part with one character substituted, adjacent characters swapped
    or one character left out (parts shorter than ``min_length`` left out). Empty when
    the key cannot be near-matched. The lead leaving a character out: ``insertion_values``."""
    split = editable_split(key_type, value, country_code=country_code)
    if split is None or key_type not in NEAR_KEY_TYPES:
        return ()
    prefix, part = split
    found: list[str] = []
    last = len(part) - 1
    same_length = len(part) >= min_length
    for at, char in enumerate(part):
        head, tail = prefix + part[:at], part[at + 1 :]
        if same_length:
            alphabet = _DIGITS if char in _DIGITS else _LETTERS if char in _LETTERS else ""
            found += [
                head + other + tail for other in alphabet if other != char and (at or other != "0")
            ]
            if at < last and part[at + 1] != char:
                found.append(head + part[at + 1] + char + part[at + 2 :])
        if last >= min_length and (at == 0 or part[at - 1] != char):
            found.append(head + tail)  # a run of one character deletes to one value
    return tuple(found)


LETTERLESS_MIN_SAMPLED = 50
"""Sampled documents a type needs before ``letterless_kinds`` calls it digits-only."""


def letterless_kinds(
    documents: Iterable[str], *, min_sampled: int = LETTERLESS_MIN_SAMPLED
) -> frozenset[str]:
    """The document types (``DNI`` of ``DNI:45678912``) whose sampled numbers are all
    digits, each seen at least ``min_sampled`` times: a lead of such a type that left a
    character out left a digit, so ``insertion_values`` puts back digits only (90 values
    for an 8-digit DNI instead of 324: 57% fewer to look up). A type sampled less, or
    holding a letter anywhere, keeps every character."""
    seen: dict[str, int] = {}
    lettered: set[str] = set()
    for value in documents:
        kind, _, number = value.partition(":")
        seen[kind] = seen.get(kind, 0) + 1
        if not number.isdigit():
            lettered.add(kind)
    return frozenset(
        kind for kind, count in seen.items() if count >= min_sampled and kind not in lettered
    )


def insertion_values(
    key_type: str,
    value: str,
    *,
    country_code: str,
    min_length: int = NEAR_MIN_LENGTH,
    letterless: frozenset[str] = frozenset(),
) -> tuple[str, ...]:
    """The values a person may hold when the lead left one of their characters out:
    ``value``'s editable part with one character of ``NEAR_ALPHABETS`` inserted at each
    position (never a 0 in front: normalized values never start with one), each value
    once (a character inserted next to the same character is the same value), parts
    shorter than ``min_length`` left out; digits only for a document of a type in
    ``letterless`` (``letterless_kinds``). Empty when the key cannot be near-matched."""
    split = editable_split(key_type, value, country_code=country_code)
    if split is None or key_type not in NEAR_KEY_TYPES or len(split[1]) + 1 < min_length:
        return ()
    prefix, part = split
    alphabet = (
        _DIGITS
        if key_type == "document" and prefix[:-1] in letterless
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
