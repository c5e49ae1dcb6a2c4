"""Helpers for the tests of the pure decisions (``matcher.match``): a lead's usable keys
from its raw values, and what a batch looks up one edit away."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from matcher import near as one_edit
from matcher import records
from matcher.normalize import NormalizationRules


def usable_keys(
    *,
    phone: str | None,
    document_type: str | None,
    document_number: str | None,
    email: str | None,
    rules: NormalizationRules,
    junk: Collection[tuple[str, str]] = frozenset(),
) -> dict[str, str]:
    """Normalized keys with the shared rules; absent, malformed and junk values left out.

    Junk is the blocklist of ``rules`` plus ``junk`` (``junk_keys``: also the
    values shared by too many registry persons).
    """
    normalized = {
        "document": rules.document(document_type, document_number),
        "phone": rules.phone(phone),
        "email": rules.email(email),
    }
    return drop_junk(normalized, rules=rules, junk=junk)


def drop_junk(
    keys: Mapping[str, str | None],
    *,
    rules: NormalizationRules,
    junk: Collection[tuple[str, str]] = frozenset(),
) -> dict[str, str]:
    """Normalized keys without absent and junk values, in their order: what dbt's
    ``int_lead_identifiers`` gives the backlog view."""
    blocklisted = rules.blocklisted
    return {
        key_type: value
        for key_type, value in keys.items()
        if value and (key_type, value) not in blocklisted and (key_type, value) not in junk
    }


def near_lookups(
    decisions: Iterable[records.Decision], *, country_code: str
) -> list[tuple[str, str]]:
    """Every lead ``(key_type, value)`` the batch looks up one edit away, sorted."""
    return sorted(one_edit.NearLookup.of(decisions, country_code=country_code).values)
