"""Who is this lead? Pure decisions over frozen records: no I/O, no database.

A batch is decided in two steps. ``classify`` settles every lead that the exact keys
settle (missing identifiers, conflicts, ambiguity, no match) and names the one candidate
person of the rest; ``decide_batch`` then compares the names of all those pairs
(``matcher.names``) and finishes: two keys agreeing on one person link; a single key (a
document, or a lone phone or email) links only when the names corroborate it, and fails
``name_mismatch`` when they clearly disagree. Identifiers are dense (a third of all
8-digit numbers are somebody's DNI), so a typo usually lands on another real person: a
single key is never enough. A wrong link is worse than no link: in doubt, fail with a
reason.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from matcher import names
from matcher.names import NameScore, TokenWeights
from matcher.records import NOTHING, Decision, Lead, NameCheck, Person

KEY_TYPES: tuple[str, ...] = ("document", "phone", "email")
"""Key types, strongest first; rule names list them in this order (``document+phone``)."""

DEFAULT_NAME_THRESHOLD = 85.0
DEFAULT_NAME_MISMATCH_THRESHOLD = 50.0
DEFAULT_NAME_MIN_BITS = 8.0
DEFAULT_NEAR_NAME_THRESHOLD = 92.0
DEFAULT_NEAR_NAME_MIN_BITS = 11.0
EXACT_SCORE = 100.0


@dataclass(frozen=True)
class NameRules:
    """When names corroborate a key (see ``matcher.names`` for the score and the bits).

    A single key links when the score is at least ``threshold`` and the agreeing words
    carry at least ``min_bits``; a score below ``mismatch_threshold`` is a clear
    disagreement (``name_mismatch``); in between, or with a name missing, the names
    cannot tell (``low_confidence``).

    A person one edit away must agree strongly: a score of at least ``near_threshold``,
    a word in common, and ``near_min_bits`` plus one bit per doubling of the persons one
    edit away (``near_bits_needed``): the lead's typo could have come from any of them,
    and each is a stranger who might share the lead's name by chance (measured on the
    demo data: a random stranger agrees that well with about 0.1 * 2^-bits of leads).
    """

    threshold: float = DEFAULT_NAME_THRESHOLD
    mismatch_threshold: float = DEFAULT_NAME_MISMATCH_THRESHOLD
    min_bits: float = DEFAULT_NAME_MIN_BITS
    near_threshold: float = DEFAULT_NEAR_NAME_THRESHOLD
    near_min_bits: float = DEFAULT_NEAR_NAME_MIN_BITS
    weights: TokenWeights = field(default=names.DEFAULT_WEIGHTS, compare=False)
    """How informative each word is: from a sample of the registry's names."""

    def agrees(self, score: NameScore) -> bool:
        return score.score >= self.threshold and score.bits >= self.min_bits

    def near_bits_needed(self, neighbours: int) -> float:
        """The information a person one edit away needs, among ``neighbours`` persons."""
        return round(self.near_min_bits + math.log2(max(1, neighbours)), 1)

    def agrees_strongly(self, score: NameScore, *, neighbours: int) -> bool:
        return (
            score.shares_word
            and score.score >= self.near_threshold
            and score.bits >= self.near_bits_needed(neighbours)
        )

    def limits(self) -> dict[str, float]:
        """The thresholds of a single-key decision, for the evidence."""
        return {
            "name_threshold": self.threshold,
            "name_min_bits": self.min_bits,
            "name_mismatch_threshold": self.mismatch_threshold,
        }


DEFAULT_NAME_RULES = NameRules()


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

    def without(self, lead: Lead, person_keys: Collection[str]) -> CandidateIndex:
        """The persons of ``lead``'s keys but ``person_keys`` (those a reviewer rejected
        for this lead): an index for that lead alone."""
        return CandidateIndex(
            {
                (key_type, value): {
                    person_key: person
                    for person_key, person in self.lookup(key_type, value).items()
                    if person_key not in person_keys
                }
                for key_type, value in lead.keys.items()
            }
        )


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


def compare_names(lead: Lead, person: Person, rules: NameRules) -> NameScore:
    """The lead's name against the person's (``matcher.names.compare``, cached words)."""
    return names.compare(
        names.tokens(lead.full_name), names.tokens(person.full_name), rules.weights
    )


def finish(check: NameCheck, score: NameScore, *, rules: NameRules) -> Decision:
    """Two keys agreeing on the person link (the names recorded); a single key links only
    when the names corroborate it, and fails ``name_mismatch`` when they clearly
    disagree, ``low_confidence`` when they cannot tell (one of them missing, or too
    little of them agreeing)."""
    evidence = {**check.evidence, "name_score": score.score, "name_bits": score.bits}
    if len(check.agreeing) >= 2:
        return Decision(
            lead=check.lead,
            outcome="matched",
            match_rule="+".join(check.agreeing),
            match_score=EXACT_SCORE,
            person_key=check.person.person_key,
            evidence=evidence,
        )
    rule = f"{check.agreeing[0]}+name"
    if rules.agrees(score):
        return Decision(
            lead=check.lead,
            outcome="matched",
            match_rule=rule,
            match_score=score.score,
            person_key=check.person.person_key,
            evidence=evidence,
        )
    names_missing = [
        side
        for side, name in (("lead", check.lead.full_name), ("person", check.person.full_name))
        if names.tokens(name) is None
    ]
    reason = (
        "name_mismatch"
        if not names_missing and score.score < rules.mismatch_threshold
        else "low_confidence"
    )
    detail = {
        **evidence,
        "person_key": check.person.person_key,
        "name_rule": rule,
        "lead_name": check.lead.full_name,
        "person_name": check.person.full_name,
        **rules.limits(),
    }
    if names_missing:
        detail["name_missing"] = names_missing
    return failed(check.lead, reason, detail, match_score=score.score)


def decide_batch(
    leads: Sequence[Lead],
    index: CandidateIndex,
    *,
    rules: NameRules = DEFAULT_NAME_RULES,
    rejected: Mapping[str, frozenset[str]] = NOTHING,
) -> list[Decision]:
    """Every lead's decision, in input order; each single candidate's name compared.

    ``rejected``: lead -> the persons a reviewer said it is not (while its identifiers
    are as they were then): they are no candidates of that lead, whatever the rules say,
    and the evidence names them (``rejected``)."""
    classified = [
        _classify_rejecting(lead, index, rejected[lead.lead_source_pk])
        if lead.lead_source_pk in rejected
        else classify(lead, index)
        for lead in leads
    ]
    decided = [
        item
        if isinstance(item, Decision)
        else finish(item, compare_names(item.lead, item.person, rules), rules=rules)
        for item in classified
    ]
    if not rejected:
        return decided
    return [
        with_rejected(decision, rejected[decision.lead.lead_source_pk])
        if decision.lead.lead_source_pk in rejected
        else decision
        for decision in decided
    ]


def _classify_rejecting(
    lead: Lead, index: CandidateIndex, rejected: Collection[str]
) -> Decision | NameCheck:
    """``classify`` without the rejected persons; a key they share with others is still
    shared (it supports a match, never makes one)."""
    item = classify(lead, index.without(lead, rejected))
    if isinstance(item, Decision):
        return item
    shared = {
        key_type
        for key_type, value in lead.keys.items()
        if len(holders := index.lookup(key_type, value)) > 1
        and not set(rejected).isdisjoint(holders)
    }
    agreeing = tuple(key_type for key_type in item.agreeing if key_type not in shared)
    if not agreeing:
        return failed(
            lead, "ambiguous", {**item.evidence, "candidate_person_keys": [item.person.person_key]}
        )
    return item._replace(agreeing=agreeing)


def with_rejected(decision: Decision, person_keys: Collection[str]) -> Decision:
    """The decision with the persons a reviewer rejected for its lead in its evidence."""
    return decision._replace(evidence={**decision.evidence, "rejected": sorted(person_keys)})


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
