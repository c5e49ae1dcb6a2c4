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
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from matcher.normalize import NormalizationRules, normalize_name

KEY_TYPES: tuple[str, ...] = ("document", "phone", "email")
"""Key types, strongest first; rule names list them in this order (``document+phone``)."""

STRONG_KEY = "document"
DEFAULT_NAME_THRESHOLD = 85.0
EXACT_SCORE = 100.0

Outcome = Literal["matched", "failed"]

NOTHING: Mapping[str, Any] = MappingProxyType({})
"""An empty, read-only mapping: the default keys and evidence of the records below."""

# The records are NamedTuples: typed and immutable like frozen dataclasses, and several
# times cheaper to make (a run makes a few per lead, tens of thousands per second).


class Lead(NamedTuple):
    """A lead to decide: its usable keys are normalized, junk already removed."""

    lead_source_pk: str
    created_at: datetime | None
    identifiers_hash: str
    full_name: str | None
    keys: Mapping[str, str] = NOTHING
    """key_type -> normalized value, only for usable (present, non-junk) keys."""
    last_attempt_id: int = 0
    """The newest attempt of the lead when it was read (0: none): the writer skips the
    lead if another attempt was logged since."""


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
    """Already-normalized keys (dbt's) without absent and junk values, in their order."""
    blocklisted = rules.blocklisted
    return {
        key_type: value
        for key_type, value in keys.items()
        if value and (key_type, value) not in blocklisted and (key_type, value) not in junk
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


class Person(NamedTuple):
    person_key: str
    full_name: str | None


_NO_PERSONS: Mapping[str, Person] = {}


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


class Decision(NamedTuple):
    """One lead's outcome, explainable: the rule, the score and the evidence."""

    lead: Lead
    outcome: Outcome
    fail_reason: str | None = None
    match_rule: str | None = None
    match_score: float | None = None
    person_key: str | None = None
    evidence: Mapping[str, Any] = NOTHING

    @property
    def is_matched(self) -> bool:
        return self.outcome == "matched"


class NameCheck(NamedTuple):
    """A lead with exactly one candidate person: the names decide or are recorded."""

    lead: Lead
    person: Person
    agreeing: tuple[str, ...]
    evidence: Mapping[str, Any]


def failed(lead: Lead, reason: str, evidence: Mapping[str, Any], **extra: Any) -> Decision:
    return Decision(lead=lead, outcome="failed", fail_reason=reason, evidence=evidence, **extra)


def classify(lead: Lead, index: CandidateIndex) -> Decision | NameCheck:
    """Settle what the exact keys settle; else the single candidate and its agreeing keys."""
    keys = lead.keys
    if not keys:
        return failed(lead, "missing_identifiers", {})
    persons_by_key = index.persons
    found: dict[str, Mapping[str, Person]] = {}
    evidence: dict[str, Any] = {}
    pointing: dict[str, set[str]] = {}
    for key_type in KEY_TYPES:  # one pass, strongest key first (a hot loop: no helpers)
        value = keys.get(key_type)
        if value is not None:
            persons = persons_by_key.get((key_type, value), _NO_PERSONS)
            found[key_type] = persons
            evidence[key_type] = {
                "value": value,
                "person_keys": sorted(persons) if len(persons) > 1 else list(persons),
            }
            if persons:
                pointing[key_type] = set(persons)
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


# --- near matching (issue 8): one wrong character in a document or phone ----------------
# A lead whose exact keys found nobody may still be a registry person with one typo: a
# substitution, insertion, deletion or adjacent transposition (optimal string alignment
# distance 1) in the document NUMBER or the national phone number. The candidates come
# from dbt's symmetric deletion neighbourhood (``int_person_identifier_deletions``: each
# person value and its 1-character deletions, junk and shared values left out); here the
# lead's variants are made, the rows found are checked to be exactly one edit away, and
# a single candidate links only when the names agree strongly.

NEAR_KEY_TYPES: tuple[str, ...] = ("document", "phone")
NEAR_RULES: Mapping[str, str] = {"document": "document_one_edit", "phone": "phone_one_edit"}
DEFAULT_NEAR_NAME_THRESHOLD = 92.0
NEAR_FAIL_REASONS = frozenset({"no_match", "low_confidence"})


def editable_split(key_type: str, value: str, *, country_code: str) -> tuple[str, str] | None:
    """``(fixed prefix, editable part)`` of a key, as the dbt model splits it: the TYPE of a
    document stays, so does the country code of a phone; None for other countries' phones."""
    if key_type == "document":
        kind, _, number = value.partition(":")
        return f"{kind}:", number
    if key_type == "phone" and value.startswith(country_code):
        return country_code, value[len(country_code) :]
    return None


@functools.lru_cache(maxsize=1 << 13)
def deletion_variants(key_type: str, value: str, *, country_code: str) -> frozenset[str]:
    """The value and every 1-character deletion of its editable part (empty when the key
    cannot be near-matched). Cached: a batch asks for each of its values twice, to look
    them up and to check what came back."""
    split = editable_split(key_type, value, country_code=country_code)
    if split is None or key_type not in NEAR_KEY_TYPES:
        return frozenset()
    prefix, part = split
    return frozenset({value, *(prefix + part[:at] + part[at + 1 :] for at in range(len(part)))})


def edit_kind(lead_value: str, person_value: str) -> str:
    """How the lead's value differs from the person's (they are one edit apart)."""
    if len(lead_value) > len(person_value):
        return "insertion"
    if len(lead_value) < len(person_value):
        return "deletion"
    differing = sum(left != right for left, right in zip(lead_value, person_value, strict=True))
    return "substitution" if differing == 1 else "transposition"


class NearCandidate(NamedTuple):
    key_type: str
    key_value: str
    person: Person


@dataclass(frozen=True)
class NearIndex:
    """Registry values by deletion variant, for one batch."""

    by_variant: Mapping[tuple[str, str], tuple[NearCandidate, ...]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str, str, str | None]]) -> NearIndex:
        """From ``(key_type, variant, key_value, person_key, full_name)`` rows."""
        by_variant: dict[tuple[str, str], list[NearCandidate]] = {}
        for key_type, variant, key_value, person_key, full_name in rows:
            by_variant.setdefault((key_type, variant), []).append(
                NearCandidate(key_type, key_value, Person(person_key, full_name))
            )
        return cls({key: tuple(found) for key, found in by_variant.items()})

    def candidates(self, key_type: str, value: str, *, country_code: str) -> list[NearCandidate]:
        """Persons whose value is exactly one edit from ``value`` (two values sharing a
        deletion variant can be two edits apart: those are dropped), by person key."""
        found = {
            candidate.person.person_key: candidate
            for variant in deletion_variants(key_type, value, country_code=country_code)
            for candidate in self.by_variant.get((key_type, variant), ())
            if OSA.distance(value, candidate.key_value) == 1
        }
        return [found[person_key] for person_key in sorted(found)]


def near_keys(decision: Decision) -> dict[str, str]:
    """The keys to try one edit away: a failed lead's documents and phones whose exact
    lookup found nobody (a match, a conflict or an ambiguity is never revisited)."""
    if decision.fail_reason not in NEAR_FAIL_REASONS:  # matched: no fail_reason
        return {}
    keys = decision.lead.keys
    return {
        key_type: keys[key_type]
        for key_type in NEAR_KEY_TYPES
        if key_type in keys and not decision.evidence.get(key_type, {}).get("person_keys")
    }


@dataclass(frozen=True)
class NearLookup:
    """What a batch asks of the deletion table: the variants of its unsettled documents
    and phones, and which lead values each variant came from."""

    lead_values: Mapping[tuple[str, str], tuple[str, ...]]
    """``(key_type, variant)`` -> the batch's values that have this deletion variant."""

    @classmethod
    def of(cls, decisions: Iterable[Decision], *, country_code: str) -> NearLookup:
        lead_values: dict[tuple[str, str], tuple[str, ...]] = {}
        for decision in decisions:
            for key_type, value in near_keys(decision).items():
                for variant in deletion_variants(key_type, value, country_code=country_code):
                    values = lead_values.get((key_type, variant), ())
                    if value not in values:
                        lead_values[(key_type, variant)] = (*values, value)
        return cls(lead_values)

    @property
    def variants(self) -> list[tuple[str, str]]:
        """Every ``(key_type, variant)`` to look up: one query for the batch."""
        return list(self.lead_values)

    def is_one_edit(self, key_type: str, variant: str, value: str) -> bool:
        """Is a registry value found through ``variant`` one edit from a lead value that
        has it? (Two values sharing a deletion variant can be two edits apart.)"""
        return any(
            OSA.distance(lead_value, value) == 1
            for lead_value in self.lead_values.get((key_type, variant), ())
        )


def near_lookups(decisions: Iterable[Decision], *, country_code: str) -> list[tuple[str, str]]:
    """Every ``(key_type, variant)`` the batch needs from the deletion table, sorted."""
    return sorted(NearLookup.of(decisions, country_code=country_code).variants)


def _exact_person_keys(decision: Decision) -> set[str]:
    return {
        person_key
        for key_type in KEY_TYPES
        for person_key in decision.evidence.get(key_type, {}).get("person_keys", ())
    }


def _near_evidence(
    keys: Mapping[str, str], found: Mapping[str, list[NearCandidate]]
) -> dict[str, Any]:
    return {
        key_type: {
            "lead_value": keys[key_type],
            "candidates": [
                {
                    "person_key": candidate.person.person_key,
                    "person_value": candidate.key_value,
                    "edit": edit_kind(keys[key_type], candidate.key_value),
                }
                for candidate in candidates
            ],
        }
        for key_type, candidates in found.items()
    }


def decide_near(
    decisions: Sequence[Decision],
    index: NearIndex,
    *,
    near_name_threshold: float = DEFAULT_NEAR_NAME_THRESHOLD,
    country_code: str,
) -> list[Decision]:
    """Revisit the exact pass's ``no_match``/``low_confidence`` leads one edit away.

    Exactly one near person, no exact key pointing elsewhere and names scoring at least
    ``near_name_threshold`` links (``document_one_edit`` before ``phone_one_edit``); two or
    more near persons are ``ambiguous``; an exact key pointing at another person is a
    ``conflict``. A lead without near candidates keeps its decision. Names are scored in
    one rapidfuzz call.
    """
    pending: list[tuple[int, Decision, Person, str, dict[str, Any]]] = []
    result = list(decisions)
    for position, decision in enumerate(decisions):
        keys = near_keys(decision)
        found = {
            key_type: candidates
            for key_type, value in keys.items()
            if (candidates := index.candidates(key_type, value, country_code=country_code))
        }
        if not found:
            continue
        near = _near_evidence(keys, found)
        persons = {c.person.person_key: c.person for cs in found.values() for c in cs}
        exact = _exact_person_keys(decision)
        evidence = {**decision.evidence, "near": near}
        if len(persons) > 1:
            result[position] = failed(
                decision.lead, "ambiguous", {**evidence, "candidate_person_keys": sorted(persons)}
            )
        elif exact and exact != set(persons):
            conflicting = sorted(exact | set(persons))
            result[position] = failed(
                decision.lead, "conflict", {**evidence, "conflicting_person_keys": conflicting}
            )
        elif exact:
            # the exact key and the near one agree, but the names did not pass even the
            # exact threshold: the stricter near one cannot pass; keep the exact decision
            result[position] = failed(
                decision.lead,
                decision.fail_reason or "low_confidence",
                evidence,
                match_score=decision.match_score,
            )
        else:
            rule = NEAR_RULES[next(key_type for key_type in NEAR_KEY_TYPES if key_type in found)]
            pending.append((position, decision, next(iter(persons.values())), rule, evidence))
    names = [
        (normalize_name_cached(decision.lead.full_name), normalize_name_cached(person.full_name))
        for _, decision, person, _, _ in pending
    ]
    for (position, decision, person, rule, evidence), score in zip(
        pending, name_scores(names), strict=True
    ):
        evidence = {**evidence, "name_score": score}
        if score >= near_name_threshold:
            result[position] = Decision(
                lead=decision.lead,
                outcome="matched",
                match_rule=rule,
                match_score=score,
                person_key=person.person_key,
                evidence=evidence,
            )
        else:
            result[position] = failed(
                decision.lead,
                "low_confidence",
                {**evidence, "person_key": person.person_key, "name_rule": rule},
                match_score=score,
            )
    return result
