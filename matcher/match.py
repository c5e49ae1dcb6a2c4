"""Who is this lead? Pure decisions over frozen records: no I/O, no database.

A batch is decided in two steps. ``classify`` settles every lead that the exact keys
settle (missing identifiers, conflicts, ambiguity, no match) and names the one candidate
person of the rest; ``decide_batch`` then scores the names of all those pairs at once
(rapidfuzz) and finishes: a document, or two keys agreeing, links; a lone phone or email
links only when the names agree. A wrong link is worse than no link: in doubt, fail with
a reason.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from rapidfuzz import fuzz, process

from matcher.normalize import NormalizationRules, normalize_name

KEY_TYPES: tuple[str, ...] = ("document", "phone", "email")
"""Key types, strongest first; rule names list them in this order (``document+phone``)."""

STRONG_KEY = "document"
DEFAULT_NAME_THRESHOLD = 85.0
EXACT_SCORE = 100.0

Outcome = Literal["matched", "failed"]


@dataclass(frozen=True)
class Lead:
    """A lead to decide: its usable keys are normalized, junk already removed."""

    lead_source_pk: str
    created_at: datetime | None
    identifiers_hash: str
    full_name: str | None
    keys: Mapping[str, str] = field(default_factory=dict)
    """key_type -> normalized value, only for usable (present, non-junk) keys."""


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

    Junk is the blocklist of ``rules`` plus ``junk`` (``int_junk_identifiers``: also the
    values shared by too many registry persons).
    """
    blocklists = {
        "document": rules.junk_documents,
        "phone": rules.junk_phones,
        "email": rules.junk_emails,
    }
    normalized = {
        "document": rules.document(document_type, document_number),
        "phone": rules.phone(phone),
        "email": rules.email(email),
    }
    return {
        key_type: value
        for key_type, value in normalized.items()
        if value is not None and value not in blocklists[key_type] and (key_type, value) not in junk
    }


def drop_junk(
    keys: Mapping[str, str | None],
    *,
    rules: NormalizationRules,
    junk: Collection[tuple[str, str]] = frozenset(),
) -> dict[str, str]:
    """Already-normalized keys (dbt's) without absent and junk values."""
    blocklists = {
        "document": rules.junk_documents,
        "phone": rules.junk_phones,
        "email": rules.junk_emails,
    }
    return {
        key_type: value
        for key_type, value in keys.items()
        if value and value not in blocklists[key_type] and (key_type, value) not in junk
    }


@functools.lru_cache(maxsize=1 << 16)
def _normalized_word(word: str) -> str | None:
    return normalize_name(word)


def normalize_name_cached(raw: str | None) -> str | None:
    """``normalize_name`` word by word with a cache: the same result (words split on
    whitespace normalize independently), at a fraction of the cost, since first names
    and surnames repeat."""
    if not raw:
        return None
    words = [word for word in map(_normalized_word, raw.split()) if word]
    return " ".join(words) or None


@dataclass(frozen=True)
class Person:
    person_key: str
    full_name: str | None


@dataclass(frozen=True)
class CandidateIndex:
    """Registry persons by (key_type, key_value), for one batch."""

    persons: Mapping[tuple[str, str], Mapping[str, Person]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str, str | None]]) -> CandidateIndex:
        """From ``(key_type, key_value, person_key, full_name)`` rows."""
        persons: dict[tuple[str, str], dict[str, Person]] = {}
        for key_type, key_value, person_key, full_name in rows:
            persons.setdefault((key_type, key_value), {})[person_key] = Person(
                person_key, full_name
            )
        return cls(persons)

    def lookup(self, key_type: str, key_value: str) -> Mapping[str, Person]:
        return self.persons.get((key_type, key_value), {})


@dataclass(frozen=True)
class Decision:
    """One lead's outcome, explainable: the rule, the score and the evidence."""

    lead: Lead
    outcome: Outcome
    fail_reason: str | None = None
    match_rule: str | None = None
    match_score: float | None = None
    person_key: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_matched(self) -> bool:
        return self.outcome == "matched"


@dataclass(frozen=True)
class NameCheck:
    """A lead with exactly one candidate person: the names decide or are recorded."""

    lead: Lead
    person: Person
    agreeing: tuple[str, ...]
    evidence: Mapping[str, Any]


def failed(lead: Lead, reason: str, evidence: Mapping[str, Any], **extra: Any) -> Decision:
    return Decision(lead=lead, outcome="failed", fail_reason=reason, evidence=evidence, **extra)


def classify(lead: Lead, index: CandidateIndex) -> Decision | NameCheck:
    """Settle what the exact keys settle; else the single candidate and its agreeing keys."""
    if not lead.keys:
        return failed(lead, "missing_identifiers", {})
    found = {
        key_type: index.lookup(key_type, lead.keys[key_type])
        for key_type in KEY_TYPES
        if key_type in lead.keys
    }
    evidence: dict[str, Any] = {
        key_type: {"value": lead.keys[key_type], "person_keys": sorted(persons)}
        for key_type, persons in found.items()
    }
    pointing = {key_type: set(persons) for key_type, persons in found.items() if persons}
    if not pointing:
        return failed(lead, "no_match", evidence)
    common = set.intersection(*pointing.values())
    if not common:
        conflicting = sorted(set.union(*pointing.values()))
        return failed(lead, "conflict", {**evidence, "conflicting_person_keys": conflicting})
    if len(common) > 1:
        return failed(lead, "ambiguous", {**evidence, "candidate_person_keys": sorted(common)})
    (person_key,) = common
    # A key counts for the rule only when it points at this person alone; a key shared
    # with others (a family phone) supports the match but cannot make it.
    agreeing = tuple(key_type for key_type, persons in pointing.items() if persons == {person_key})
    if not agreeing:
        return failed(lead, "ambiguous", {**evidence, "candidate_person_keys": [person_key]})
    person = next(found[key_type][person_key] for key_type in agreeing)
    return NameCheck(lead=lead, person=person, agreeing=agreeing, evidence=evidence)


def name_scores(pairs: Sequence[tuple[str | None, str | None]]) -> list[float]:
    """``token_sort_ratio`` (0-100) of normalized name pairs, all at once; 0 if one is absent."""
    if not pairs:
        return []
    queries = [left or "" for left, _ in pairs]
    choices = [right or "" for _, right in pairs]
    scores = process.cpdist(queries, choices, scorer=fuzz.token_sort_ratio, workers=1)
    return [
        round(float(score), 1) if left and right else 0.0
        for score, (left, right) in zip(scores, pairs, strict=True)
    ]


def finish(check: NameCheck, score: float, *, name_threshold: float) -> Decision:
    """The name score recorded for every match; the decider for a lone phone or email."""
    evidence = {**check.evidence, "name_score": score}
    if STRONG_KEY in check.agreeing or len(check.agreeing) >= 2:
        return Decision(
            lead=check.lead,
            outcome="matched",
            match_rule="+".join(check.agreeing),
            match_score=EXACT_SCORE,
            person_key=check.person.person_key,
            evidence=evidence,
        )
    rule = f"{check.agreeing[0]}+name"
    if score >= name_threshold:
        return Decision(
            lead=check.lead,
            outcome="matched",
            match_rule=rule,
            match_score=score,
            person_key=check.person.person_key,
            evidence=evidence,
        )
    return failed(
        check.lead,
        "low_confidence",
        {**evidence, "person_key": check.person.person_key, "name_rule": rule},
        match_score=score,
    )


def decide_batch(
    leads: Sequence[Lead],
    index: CandidateIndex,
    *,
    name_threshold: float = DEFAULT_NAME_THRESHOLD,
) -> list[Decision]:
    """Every lead's decision, in input order; names scored in one rapidfuzz call."""
    classified = [classify(lead, index) for lead in leads]
    checks = [item for item in classified if isinstance(item, NameCheck)]
    names = [(check.lead.full_name, check.person.full_name) for check in checks]
    normalized = [
        (normalize_name_cached(lead), normalize_name_cached(person)) for lead, person in names
    ]
    scores = name_scores(normalized)
    finished = iter(
        finish(check, score, name_threshold=name_threshold)
        for check, score in zip(checks, scores, strict=True)
    )
    return [item if isinstance(item, Decision) else next(finished) for item in classified]


def conflict_with_existing_link(decision: Decision, existing_person_key: str) -> Decision:
    """A lead linked to another person meanwhile: never overwrite; record a conflict."""
    return failed(
        decision.lead,
        "conflict",
        {
            **decision.evidence,
            "already_linked_elsewhere": existing_person_key,
            "decided_person_key": decision.person_key,
        },
    )
