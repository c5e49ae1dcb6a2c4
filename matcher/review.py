"""The review queue, pure: which leads need a person, their candidates, the CSV a
spreadsheet user fills in, and what each decision became. No database, no Click."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

REVIEW_REASONS = ("conflict", "low_confidence", "ambiguous", "name_mismatch")
"""The reason buckets only a person can settle: the matcher found candidates and would
not choose."""

WHAT_FIXES: Mapping[str, str] = {
    "conflict": "review",
    "low_confidence": "review",
    "ambiguous": "review",
    "name_mismatch": "review",
    "missing_identifiers": "upstream data",
    "no_match": "wait for the registry",
    "person_changed": "wait (the next run decides again)",
    "pending_match": "wait (the next run)",
}
"""What drains each reason bucket of the backlog."""

DECISIONS = ("link", "reject")

CSV_COLUMNS = (
    "lead_source_pk",
    "reason",
    "lead_name",
    "lead_document",
    "lead_phone",
    "lead_email",
    "candidate",
    "person_key",
    "person_name",
    "person_document",
    "person_phone",
    "person_email",
    "agreeing_keys",
    "identifiers_hash",
    "decision",
    "note",
)
"""The export's columns; an import needs ``lead_source_pk``, ``person_key``,
``identifiers_hash``, ``decision`` and reads ``note``."""

REQUIRED_COLUMNS = ("lead_source_pk", "person_key", "identifiers_hash", "decision")

STATUS_TEXT: Mapping[str, str] = {
    "linked": "linked",
    "rejected": "rejected",
    "unchanged": "already recorded: nothing to do",
    "unknown_lead": "no such lead",
    "unknown_person": "no such registry person",
    "stale": "the lead's identifiers changed since the export (export again)",
    "already_linked": "the lead is already linked",
    "claimed": "the lead was claimed",
    "linked_to_person": "the lead is linked to this person: use `kpi-red unlink`",
    "linked_meanwhile": "someone else linked the lead meanwhile",
}
APPLIED = frozenset({"linked", "rejected"})
"""The statuses that recorded something."""


@dataclass(frozen=True)
class Decision:
    """A person's decision on one (lead, person) pair, for the lead as it was shown."""

    lead_source_pk: str
    person_key: str
    decision: str
    identifiers_hash: str
    note: str | None = None
    row: int | None = None
    """The CSV line it came from (an import)."""


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    status: str

    @property
    def applied(self) -> bool:
        return self.status in APPLIED

    @property
    def text(self) -> str:
        return STATUS_TEXT.get(self.status, self.status)


@dataclass(frozen=True)
class Candidate:
    person_key: str
    full_name: str | None = None
    keys: Mapping[str, str | None] = field(default_factory=dict)
    agreeing: tuple[str, ...] = ()
    """The key types whose value the lead and the person share."""
    rejected: bool = False


@dataclass(frozen=True)
class QueueLead:
    lead_source_pk: str
    reason: str
    created_at: Any
    age_days: int
    identifiers_hash: str
    full_name: str | None
    keys: Mapping[str, str | None]
    candidates: tuple[Candidate, ...]

    @property
    def open_candidates(self) -> tuple[Candidate, ...]:
        return tuple(candidate for candidate in self.candidates if not candidate.rejected)


KEY_TYPES = ("document", "phone", "email")


def candidate_keys(evidence: Mapping[str, Any] | None, person_key: str | None = None) -> list[str]:
    """Every registry person an attempt's evidence names as a candidate of its lead, in
    the order first named: the holders of each key, the conflicting or ambiguous ones,
    the single candidate of a name check, those one edit away, those a reviewer rejected."""
    found: dict[str, None] = {}
    evidence = evidence or {}
    for key_type in KEY_TYPES:
        for key in (evidence.get(key_type) or {}).get("person_keys") or ():
            found[str(key)] = None
    for name in ("conflicting_person_keys", "candidate_person_keys"):
        for key in evidence.get(name) or ():
            found[str(key)] = None
    if evidence.get("person_key"):
        found[str(evidence["person_key"])] = None
    for near in (evidence.get("near") or {}).values():
        for candidate in near.get("candidates") or ():
            found[str(candidate["person_key"])] = None
    for key in evidence.get("rejected") or ():  # a reviewer's rejections: no candidates now
        found[str(key)] = None
    if person_key:
        found[person_key] = None
    return list(found)


def queue_leads(
    rows: Iterable[Mapping[str, Any]],
    persons: Mapping[str, Mapping[str, Any]],
    rejected: Iterable[Mapping[str, Any]],
) -> list[QueueLead]:
    """The review queue: each red lead with its candidates side by side (the persons'
    keys now, the keys they share with the lead, whether a reviewer rejected them for
    the lead as it is). Leads whose every candidate is rejected are settled: left out."""
    rejected_pairs = {
        (row["lead_source_pk"], row["person_key"], row["identifiers_hash"]) for row in rejected
    }
    leads: list[QueueLead] = []
    for row in rows:
        keys = {key_type: row.get(f"{key_type}_key") for key_type in KEY_TYPES}
        candidates = tuple(
            candidate(
                person_key,
                persons.get(person_key),
                lead_keys=keys,
                rejected=(row["lead_source_pk"], person_key, row["identifiers_hash"])
                in rejected_pairs,
            )
            for person_key in candidate_keys(row.get("evidence"), row.get("person_key"))
        )
        lead = QueueLead(
            lead_source_pk=row["lead_source_pk"],
            reason=row["reason_bucket"],
            created_at=row["lead_created_at"],
            age_days=int(row["age_days"] or 0),
            identifiers_hash=row["identifiers_hash"],
            full_name=row["full_name"],
            keys=keys,
            candidates=candidates,
        )
        if lead.open_candidates:
            leads.append(lead)
    return leads


def candidate(
    person_key: str,
    person: Mapping[str, Any] | None,
    *,
    lead_keys: Mapping[str, str | None],
    rejected: bool = False,
) -> Candidate:
    keys = {key_type: (person or {}).get(f"{key_type}_key") for key_type in KEY_TYPES}
    agreeing = tuple(
        key_type
        for key_type in KEY_TYPES
        if lead_keys.get(key_type) and lead_keys.get(key_type) == keys[key_type]
    )
    return Candidate(
        person_key=person_key,
        full_name=(person or {}).get("full_name"),
        keys=keys,
        agreeing=agreeing,
        rejected=rejected,
    )


# --- CSV ----------------------------------------------------------------------------------


def export_rows(leads: Sequence[QueueLead]) -> list[dict[str, Any]]:
    """One row per lead and open candidate, ``decision`` and ``note`` blank."""
    return [
        {
            "lead_source_pk": lead.lead_source_pk,
            "reason": lead.reason,
            "lead_name": lead.full_name or "",
            "lead_document": lead.keys.get("document") or "",
            "lead_phone": lead.keys.get("phone") or "",
            "lead_email": lead.keys.get("email") or "",
            "candidate": number,
            "person_key": option.person_key,
            "person_name": option.full_name or "",
            "person_document": option.keys.get("document") or "",
            "person_phone": option.keys.get("phone") or "",
            "person_email": option.keys.get("email") or "",
            "agreeing_keys": "+".join(option.agreeing),
            "identifiers_hash": lead.identifiers_hash,
            "decision": "",
            "note": "",
        }
        for lead in leads
        for number, option in enumerate(lead.open_candidates, start=1)
    ]


def write_csv(rows: Sequence[Mapping[str, Any]], out: io.TextIOBase | Any) -> None:
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


@dataclass(frozen=True)
class ParsedCsv:
    decisions: list[Decision]
    """The rows with a decision, valid on their own."""
    errors: list[tuple[int, str]]
    """``(line, why)`` of each row refused before reaching the database."""
    blank: int
    """Rows left undecided."""


def parse_csv(text: str) -> ParsedCsv:
    """The rows of an edited export. Refused here, each with its line: a missing column
    (the whole file), an unknown decision, a missing lead, person or hash, the same row
    twice, two ``link`` rows for one lead (both). Blank decisions are skipped."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = [name.strip() for name in reader.fieldnames or ()]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ValueError(f"not a review export: no column {', '.join(missing)}")
    decisions: list[Decision] = []
    errors: list[tuple[int, str]] = []
    blank = 0
    seen: dict[tuple[str, str, str, str], int] = {}
    for raw in reader:
        line = reader.line_num
        row = {str(key).strip(): (value or "").strip() for key, value in raw.items() if key}
        decision = row.get("decision", "").lower()
        if not decision:
            blank += 1
            continue
        if decision not in DECISIONS:
            errors.append((line, f"decision {row.get('decision')!r} is not link, reject or blank"))
            continue
        lead, person, identifiers_hash = (
            row.get("lead_source_pk", ""),
            row.get("person_key", ""),
            row.get("identifiers_hash", ""),
        )
        absent = [
            name
            for name, value in (
                ("lead_source_pk", lead),
                ("person_key", person),
                ("identifiers_hash", identifiers_hash),
            )
            if not value
        ]
        if absent:
            errors.append((line, f"{', '.join(absent)} empty"))
            continue
        pair = (lead, person, decision, identifiers_hash)
        if pair in seen:
            errors.append((line, f"the same decision as line {seen[pair]}"))
            continue
        seen[pair] = line
        decisions.append(
            Decision(
                lead_source_pk=lead,
                person_key=person,
                decision=decision,
                identifiers_hash=identifiers_hash,
                note=row.get("note") or None,
                row=line,
            )
        )
    return _one_link_per_lead(decisions, errors, blank)


def _one_link_per_lead(
    decisions: list[Decision], errors: list[tuple[int, str]], blank: int
) -> ParsedCsv:
    """Two ``link`` rows (or a link and a reject of the same person) for one lead: every
    row of that lead is refused, the reviewer's intent is unclear."""
    links: dict[str, list[Decision]] = {}
    for decision in decisions:
        if decision.decision == "link":
            links.setdefault(decision.lead_source_pk, []).append(decision)
    contradicted = {
        decision.lead_source_pk
        for decision in decisions
        if decision.decision == "reject"
        and any(
            link.person_key == decision.person_key
            for link in links.get(decision.lead_source_pk, ())
        )
    }
    unclear = {lead for lead, found in links.items() if len(found) > 1} | contradicted
    kept: list[Decision] = []
    for decision in decisions:
        if decision.lead_source_pk in unclear:
            why = (
                "two links for one lead"
                if decision.lead_source_pk not in contradicted
                else "link and reject of the same person"
            )
            errors.append((decision.row or 0, f"lead {decision.lead_source_pk}: {why}"))
        else:
            kept.append(decision)
    return ParsedCsv(decisions=kept, errors=sorted(errors), blank=blank)
