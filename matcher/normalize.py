"""Normalized identifier keys: the Python twin of ``macros/normalize/*.sql``.

One definition, two implementations; ``tests/python/test_normalize.py`` proves they agree
and checks phones against ``phonenumbers``. Every function is pure, returns ``None`` for
"absent", and never raises on any ``str`` (NUL bytes, control characters, 10 kB strings,
any unicode). Only ASCII is ever upper- or lower-cased, so Python and PostgreSQL agree in
every locale.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

MAX_RAW_LENGTH = 64  # phones and document parts longer than this are junk, not numbers
MAX_DOCUMENT_LENGTH = 20
MAX_EMAIL_LENGTH = 254
MIN_FOREIGN_LENGTH, MAX_FOREIGN_LENGTH = 8, 15  # E.164 bounds for other countries

_NOT_DIGIT = re.compile(r"[^0-9]+")  # never \D: it keeps unicode digits
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")  # also drops non-ASCII before upper-casing
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_BLANKS = " \t\r\n"
_APOSTROPHES = frozenset("'`\u00b4\u2018\u2019\u02bc")  # dropped inside names: O'Neil
_UNIT_SEPARATOR = "\x1f"  # chr(31), as in the SQL macro


def _text(raw: object) -> str | None:
    """The value as text, like ``(raw)::text`` in SQL."""
    if raw is None or isinstance(raw, str):
        return raw
    return str(raw)


def _is_one_char_repeated(value: str) -> bool:
    return not value.strip(value[0])


def normalize_phone(
    raw: str | None, *, country_code: str = "51", national_lengths: Collection[int] = (8, 9)
) -> str | None:
    """E.164 digits without ``+`` (``51987654321``), or None.

    Accepts ``+51 987 654 321``, ``0051987654321``, ``51-987-654-321``, ``987654321``, the
    national trunk ``0`` (``(01) 234-5678``) also after the country code (``+51 (0)1 234
    5678``); numbers written with ``+`` or ``00`` for another country are kept when they
    have 8 to 15 digits and do not start with ``0``.
    """
    raw = _text(raw)
    if raw is None or len(raw) > MAX_RAW_LENGTH:
        return None
    digits = _NOT_DIGIT.sub("", raw)
    if not digits:
        return None
    cc_length = len(country_code)
    if raw.lstrip(_BLANKS).startswith("+"):
        e164 = digits
    elif digits.startswith("00"):
        e164 = digits[2:]
    elif digits.startswith(country_code) and (
        len(digits) - cc_length in national_lengths
        or (digits.startswith("0", cc_length) and len(digits) - cc_length - 1 in national_lengths)
    ):
        e164 = digits
    elif digits.startswith("0") and len(digits) - 1 in national_lengths:
        e164 = country_code + digits[1:]
    elif len(digits) in national_lengths:
        e164 = country_code + digits
    else:
        return None
    if e164.startswith(country_code):
        national = e164[cc_length:]
        if national.startswith("0"):  # a trunk 0 after the country code: +51 (0) 1 234 5678
            national = national[1:]
        if (
            len(national) not in national_lengths
            or national.startswith("0")
            or _is_one_char_repeated(national)
        ):
            return None
        return country_code + national
    if (
        not MIN_FOREIGN_LENGTH <= len(e164) <= MAX_FOREIGN_LENGTH
        or e164.startswith("0")
        or _is_one_char_repeated(e164)
    ):
        return None
    return e164


def _ascii_alnum_upper(value: str) -> str:
    return _NOT_ALNUM.sub("", value).upper()


def normalize_document(
    doc_type: str | None, number: str | None, *, default_type: str = "DNI"
) -> str | None:
    """``TYPE:NUMBER`` (``DNI:45678912``), or None.

    TYPE is the ASCII alphanumerics of the type upper-cased, ``default_type`` when that is
    empty; NUMBER the ASCII alphanumerics of the number upper-cased, leading zeros stripped.
    None when the number is empty, longer than 20 characters, one character repeated, or
    either raw value is longer than 64 characters.
    """
    doc_type, number = _text(doc_type), _text(number)
    if number is None or len(number) > MAX_RAW_LENGTH:
        return None
    if doc_type is not None and len(doc_type) > MAX_RAW_LENGTH:
        return None
    cleaned = _ascii_alnum_upper(number).lstrip("0")
    if not cleaned or len(cleaned) > MAX_DOCUMENT_LENGTH or _is_one_char_repeated(cleaned):
        return None
    kind = (_ascii_alnum_upper(doc_type) if doc_type else "") or _ascii_alnum_upper(default_type)
    return f"{kind}:{cleaned}"


def normalize_email(raw: str | None) -> str | None:
    """The trimmed (space, tab, CR, LF), lower-cased address when it has an ASCII
    ``local@domain.tld`` shape and at most 254 characters; else None."""
    raw = _text(raw)
    if raw is None:
        return None
    trimmed = raw.strip(_BLANKS)
    if len(trimmed) > MAX_EMAIL_LENGTH or _EMAIL.fullmatch(trimmed) is None:
        return None
    return trimmed.lower()  # ASCII only, by the pattern


def identifiers_hash(
    *,
    full_name: str | None,
    phone: str | None,
    document_type: str | None,
    document_number: str | None,
    email: str | None,
) -> str:
    """md5 hex of the raw identifiers joined by chr(31), nulls as ''; equal to the dbt
    macro ``lead_identifiers_hash()`` for any text PostgreSQL can store."""
    parts = (full_name, phone, document_type, document_number, email)
    joined = _UNIT_SEPARATOR.join(_text(part) or "" for part in parts)
    return hashlib.md5(joined.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


IDENTIFIER_COLUMNS = ("full_name", "phone", "document_type", "document_number", "email")
"""The raw columns ``identifiers_hash`` reads, in its order (leads and registry alike)."""

IDENTIFIERS_HASH_SQL = (
    "md5(concat_ws(chr(31), coalesce(({full_name})::text, ''), coalesce(({phone})::text, ''),"
    " coalesce(({document_type})::text, ''), coalesce(({document_number})::text, ''),"
    " coalesce(({email})::text, '')))"
)
"""``identifiers_hash`` as SQL for the matcher's own statements (each ``{column}`` a
column expression, composed by the caller): the text of the macro
``lead_identifiers_hash()``, tested equal to it and to the function above."""


def normalize_name(raw: str | None) -> str | None:
    """A name for fuzzy comparison: accents dropped, case-folded, letters and single spaces
    only (``"  José-María O'Neil "`` → ``"jose maria oneil"``); None when no letter."""
    raw = _text(raw)
    if not raw:
        return None
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", raw).casefold())
    kept = "".join(
        char if char.isalpha() else " "
        for char in decomposed
        if char not in _APOSTROPHES and not unicodedata.category(char).startswith("M")
    )
    return " ".join(kept.split()) or None


@dataclass(frozen=True)
class NormalizationRules:
    """The normalization parameters, read from the same dbt vars the macros use."""

    country_code: str = "51"
    national_lengths: tuple[int, ...] = (8, 9)
    default_document_type: str = "DNI"
    junk_phones: frozenset[str] = frozenset()
    junk_documents: frozenset[str] = frozenset()
    junk_emails: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not (self.country_code.isascii() and self.country_code.isdigit()):
            raise ValueError(f"phone_country_code must be digits, not {self.country_code!r}")
        if not self.national_lengths or not all(0 < n <= 15 for n in self.national_lengths):
            raise ValueError(f"phone_national_lengths must be 1..15, not {self.national_lengths}")
        if not _ascii_alnum_upper(self.default_document_type):
            raise ValueError("default_document_type needs an ASCII letter or digit")

    @classmethod
    def from_vars(cls, vars: Mapping[str, Any]) -> NormalizationRules:
        """From ``dbt_project.yml`` vars (``Settings.vars``); missing vars take defaults."""
        defaults = cls()
        lengths = vars.get("phone_national_lengths", defaults.national_lengths)
        if isinstance(lengths, str):
            lengths = lengths.replace(",", " ").split()
        elif isinstance(lengths, int):
            lengths = (lengths,)
        return cls(
            country_code=str(vars.get("phone_country_code", defaults.country_code)),
            national_lengths=tuple(int(length) for length in lengths),
            default_document_type=str(
                vars.get("default_document_type", defaults.default_document_type)
            ),
            junk_phones=frozenset(map(str, vars.get("junk_phones") or ())),
            junk_documents=frozenset(map(str, vars.get("junk_documents") or ())),
            junk_emails=frozenset(map(str, vars.get("junk_emails") or ())),
        )

    @functools.cached_property
    def blocklisted(self) -> frozenset[tuple[str, str]]:
        """The blocklists as ``(key_type, value)`` pairs."""
        return frozenset(
            [("phone", value) for value in self.junk_phones]
            + [("document", value) for value in self.junk_documents]
            + [("email", value) for value in self.junk_emails]
        )

    def phone(self, raw: str | None) -> str | None:
        return normalize_phone(
            raw, country_code=self.country_code, national_lengths=self.national_lengths
        )

    def document(self, doc_type: str | None, number: str | None) -> str | None:
        return normalize_document(doc_type, number, default_type=self.default_document_type)

    def email(self, raw: str | None) -> str | None:
        return normalize_email(raw)
