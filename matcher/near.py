"""One wrong character in a document or phone: the near pass, pure decisions.

A lead whose exact keys found nobody, or found a person whose name clearly differs, may
still be a registry person with one typo: a substitution, insertion, deletion or
adjacent transposition (optimal string alignment distance 1) in the document NUMBER or
the national phone number. Identifiers are dense (a third of all 8-digit numbers are
somebody's DNI), so the lookup must return exactly the persons one edit away, not a
wide net to filter: every value one edit from the lead's is spelled out
(``matcher.edits``) and looked up as it is, exact index probes of ``person_keys``. A
value has several persons one edit away: names come first, and only a single person
whose name agrees strongly links.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from matcher import names
from matcher.edits import (
    NEAR_KEY_TYPES,
    NEAR_MIN_LENGTH,
    KeyShapes,
    edit_kind,
    editable_split,
    insertion_values,
    one_edit_values,
)
from matcher.match import DEFAULT_NAME_RULES, KEY_TYPES, NameRules, failed
from matcher.names import NameScore
from matcher.records import Decision, Lead, Person

NEAR_RULES: Mapping[str, str] = {"document": "document_one_edit", "phone": "phone_one_edit"}
NEAR_FAIL_REASONS = frozenset({"no_match", "low_confidence", "name_mismatch"})


class NearCandidate(NamedTuple):
    key_type: str
    key_value: str
    person: Person


@dataclass(frozen=True)
class NearIndex:
    """The persons one edit from each of a batch's values."""

    by_value: Mapping[tuple[str, str], tuple[NearCandidate, ...]] = field(default_factory=dict)

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[str, str, str, str | None]], lookup: NearLookup
    ) -> NearIndex:
        """From ``(key_type, key_value, person_key, full_name)`` rows, the holders of the
        values looked up (see ``store.stream.fetch_near_candidates``): each belongs to the
        batch's values it is one edit from."""
        by_value: dict[tuple[str, str], set[tuple[str, str, str | None]]] = {}
        for key_type, key_value, person_key, full_name in rows:
            for lead_value in lookup.came_from(key_type, key_value):
                by_value.setdefault((key_type, lead_value), set()).add(
                    (person_key, key_value, full_name)
                )
        return cls(
            {
                (key_type, lead_value): tuple(
                    NearCandidate(key_type, key_value, Person(person_key, full_name))
                    for person_key, key_value, full_name in sorted(found)
                )
                for (key_type, lead_value), found in by_value.items()
            }
        )

    @classmethod
    def from_registry(
        cls, registry: Iterable[tuple[str, str, str, str | None]], lookup: NearLookup
    ) -> NearIndex:
        """What the database lookup finds, over ``(key_type, key_value, person_key,
        full_name)`` rows in memory (junk left out by the caller; shared values here)."""
        rows = list(registry)
        holders: dict[tuple[str, str], int] = {}
        for key_type, key_value, _person_key, _full_name in rows:
            holders[(key_type, key_value)] = holders.get((key_type, key_value), 0) + 1
        return cls.from_rows((row for row in rows if holders[(row[0], row[1])] == 1), lookup)

    def candidates(self, key_type: str, value: str) -> tuple[NearCandidate, ...]:
        """The persons one edit from ``value``, by person key."""
        return self.by_value.get((key_type, value), ())


def mismatched_key(decision: Decision) -> str | None:
    """The key type whose single holder's name clearly differs from the lead's
    (``name_mismatch`` on a document or phone): a typo that landed on a stranger, maybe."""
    if decision.fail_reason != "name_mismatch":
        return None
    key_type = str(decision.evidence.get("name_rule", "")).removesuffix("+name")
    return key_type if key_type in NEAR_KEY_TYPES else None


def near_keys(decision: Decision) -> dict[str, str]:
    """The keys to try one edit away: a failed lead's documents and phones whose exact
    lookup found nobody, or found only a person whose name clearly differs (a match, a
    conflict or an ambiguity is never revisited)."""
    if decision.fail_reason not in NEAR_FAIL_REASONS:  # matched: no fail_reason
        return {}
    keys = decision.lead.keys
    mismatched = mismatched_key(decision)
    return {
        key_type: keys[key_type]
        for key_type in NEAR_KEY_TYPES
        if key_type in keys
        and (key_type == mismatched or not decision.evidence.get(key_type, {}).get("person_keys"))
    }


@dataclass(frozen=True)
class NearLookup:
    """What a batch looks up one edit away: every value one edit from its unsettled
    documents and phones, and which of its values each came from (some 400 per
    document: plain strings in one dict per key type, no record per value)."""

    values: tuple[tuple[str, str], ...]
    """``(key_type, lead value)``: the batch's values looked up, each once."""
    origins: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """key type -> value one edit off -> the (first) batch value it came from."""
    also: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    """``(key_type, value one edit off)`` -> the other batch values it came from (two
    edits apart from the first: rare)."""

    @classmethod
    def of(
        cls,
        decisions: Iterable[Decision],
        *,
        country_code: str,
        min_length: int = NEAR_MIN_LENGTH,
        shapes: KeyShapes | None = None,
    ) -> NearLookup:
        """``shapes``: the registry's (``KeyShapes``); only values of those are looked up
        (every value without them)."""
        values: dict[tuple[str, str], None] = {}
        origins: dict[str, dict[str, str]] = {}
        also: dict[tuple[str, str], tuple[str, ...]] = {}
        for decision in decisions:
            for key_type, value in near_keys(decision).items():
                split = editable_split(key_type, value, country_code=country_code)
                if split is None or len(split[1]) + 1 < min_length or (key_type, value) in values:
                    continue
                values[(key_type, value)] = None
                edited = one_edit_values(
                    key_type, value, country_code=country_code, min_length=min_length, shapes=shapes
                ) + insertion_values(
                    key_type, value, country_code=country_code, min_length=min_length, shapes=shapes
                )
                came_from = origins.setdefault(key_type, {})
                for other in edited:
                    first = came_from.setdefault(other, value)
                    if first != value:
                        also[(key_type, other)] = (*also.get((key_type, other), ()), value)
        return cls(tuple(values), origins, also)

    def came_from(self, key_type: str, edited: str) -> tuple[str, ...]:
        """The batch's values ``edited`` is one edit from (none: not looked up)."""
        first = self.origins.get(key_type, {}).get(edited)
        if first is None:
            return ()
        return (first, *self.also.get((key_type, edited), ()))

    def __bool__(self) -> bool:
        return bool(self.values)


def _exact_person_keys(decision: Decision) -> set[str]:
    return {
        person_key
        for key_type in KEY_TYPES
        for person_key in decision.evidence.get(key_type, {}).get("person_keys", ())
    }


class _Near(NamedTuple):
    """One lead's one-edit neighbourhood: every candidate, and those agreeing strongly."""

    checked: Mapping[str, list[NearCandidate]]
    bits_needed: float
    strong: Mapping[str, tuple[NearCandidate, NameScore]]
    """person_key -> its first candidate (documents before phones) and its name score."""


def _neighbourhood(lead: Lead, found: Mapping[str, list[NearCandidate]], rules: NameRules) -> _Near:
    """Names first: among the persons one edit away, those whose names agree strongly.

    Most persons around a value are strangers who share no word with the lead: one set
    test each leaves them out before any scoring."""
    lead_name = names.tokens(lead.full_name)
    strong: dict[str, tuple[NearCandidate, NameScore]] = {}
    values = list(found.values())
    neighbours = (
        len(values[0])
        if len(values) == 1
        else len({candidate.person.person_key for candidates in values for candidate in candidates})
    )
    if lead_name is not None:
        forms = lead_name.forms
        search = names.search_forms(lead_name)
        might_share = names.might_share_word
        for candidates in values:
            for candidate in candidates:
                if not might_share(search, candidate.person.full_name):
                    continue
                person_name = names.tokens(candidate.person.full_name)
                if person_name is None or forms.isdisjoint(person_name.forms):
                    continue
                score = names.compare(lead_name, person_name, rules.weights)
                if rules.agrees_strongly(score, neighbours=neighbours):
                    strong.setdefault(candidate.person.person_key, (candidate, score))
    return _Near(found, rules.near_bits_needed(neighbours), strong)


def _near_evidence(keys: Mapping[str, str], near: _Near) -> dict[str, Any]:
    """Per key: the lead's value, how many persons one edit away were checked, and the
    ones whose names agree strongly (value, edit, name score and bits)."""
    return {
        key_type: {
            "lead_value": keys[key_type],
            "checked": len(candidates),
            "candidates": [
                {
                    "person_key": candidate.person.person_key,
                    "person_value": candidate.key_value,
                    "edit": edit_kind(keys[key_type], candidate.key_value),
                    "name_score": near.strong[candidate.person.person_key][1].score,
                    "name_bits": near.strong[candidate.person.person_key][1].bits,
                }
                for candidate in candidates
                if candidate.person.person_key in near.strong
            ],
        }
        for key_type, candidates in near.checked.items()
    }


def decide_near(
    decisions: Sequence[Decision],
    index: NearIndex,
    *,
    rules: NameRules = DEFAULT_NAME_RULES,
    rejected: Mapping[str, frozenset[str]] | None = None,
) -> list[Decision]:
    """Revisit the exact pass's ``no_match``, ``low_confidence`` and ``name_mismatch``
    leads one edit away (see ``near_keys``).

    Among the persons one edit away, those whose names agree strongly are kept
    (``NameRules.agrees_strongly``): none keeps the exact decision (the neighbourhood
    recorded in the evidence), two or more are ``ambiguous``, exactly one links
    (``document_one_edit`` before ``phone_one_edit``) unless an exact key points at
    another person (``conflict``). The exact holder of a mistyped value whose name
    clearly differs (``name_mismatch``) does not count as such when the person was
    found one edit from that same value: one typo explains both the stranger and the
    person one edit away, and the evidence records both. Found through another key, the
    stranger's value stays unexplained: a ``conflict``.
    """
    result = list(decisions)
    for position, decision in enumerate(decisions):
        keys = near_keys(decision)
        if not keys:
            continue
        exact = _exact_person_keys(decision)
        skipped = exact | (rejected or {}).get(decision.lead.lead_source_pk, frozenset())
        found = {
            key_type: candidates
            for key_type, value in keys.items()
            if (
                candidates := [
                    candidate
                    for candidate in index.candidates(key_type, value)
                    if candidate.person.person_key not in skipped
                ]
            )
        }
        if not found:
            continue
        near = _neighbourhood(decision.lead, found, rules)
        evidence = {
            **decision.evidence,
            "near": _near_evidence(keys, near),
            "near_name_bits_needed": near.bits_needed,
        }
        if not near.strong:
            result[position] = decision._replace(evidence=evidence)
            continue
        if len(near.strong) > 1:
            result[position] = failed(
                decision.lead,
                "ambiguous",
                {**evidence, "candidate_person_keys": sorted(near.strong)},
            )
            continue
        ((person_key, (candidate, score)),) = near.strong.items()
        # the mistyped value's holder whose name clearly differs is explained away by the
        # typo only when the person one edit away was found through that same value
        mismatched = mismatched_key(decision)
        explained = mismatched is not None and any(
            other.person.person_key == person_key for other in found.get(mismatched, ())
        )
        # (an exact holder is never a candidate one edit away: its own value is exact)
        others = exact - {decision.evidence["person_key"]} if explained else exact
        if others:
            conflicting = sorted(others | {person_key})
            result[position] = failed(
                decision.lead, "conflict", {**evidence, "conflicting_person_keys": conflicting}
            )
        else:
            result[position] = _near_match(
                decision, candidate, score, evidence=evidence, overrides=explained
            )
    return result


def _near_match(
    decision: Decision,
    candidate: NearCandidate,
    score: NameScore,
    *,
    evidence: dict[str, Any],
    overrides: bool,
) -> Decision:
    """The single person one edit away whose name agrees strongly. When it overrides a
    ``name_mismatch`` (the mistyped value is a stranger's), the evidence keeps the
    stranger, its name and its score under ``exact_name_mismatch``."""
    found = dict(evidence)
    stale = ("person_key", "person_name", "name_rule", "name_missing", *DEFAULT_NAME_RULES.limits())
    for key in stale:
        found.pop(key, None)
    if overrides:
        found["exact_name_mismatch"] = {
            "person_key": decision.evidence["person_key"],
            "person_name": decision.evidence.get("person_name"),
            "name_score": decision.evidence.get("name_score"),
            "name_bits": decision.evidence.get("name_bits"),
            "key_type": mismatched_key(decision),
        }
    found.update(
        name_score=score.score,
        name_bits=score.bits,
        lead_name=decision.lead.full_name,
        person_name=candidate.person.full_name,
    )
    return Decision(
        lead=decision.lead,
        outcome="matched",
        match_rule=NEAR_RULES[candidate.key_type],
        match_score=score.score,
        person_key=candidate.person.person_key,
        evidence=found,
    )
