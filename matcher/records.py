"""The records of the batch path, each defined once: a lead as streamed with its
candidates, the lead and the person the decisions work on, a decision, a registry person
changed since the build, a decision as staged for the write, and what the write did.
Tuples (``NamedTuple``): typed and immutable like frozen dataclasses, and several times
cheaper to make (a run makes a few per lead, tens of thousands per second). A leaf."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, NamedTuple


class BacklogLead(NamedTuple):
    """One eligible lead as streamed: its usable keys, the newest attempt seen, and the
    registry persons holding each key (a tuple: the stream makes tens of thousands per
    second)."""

    lead_source_pk: str
    created_at: datetime
    identifiers_hash: str
    full_name: str | None
    phone_key: str | None
    document_key: str | None
    email_key: str | None
    last_attempt_id: int
    candidate_key_types: list[str] | None = None
    """Per candidate, in the lists' order: the key type it holds the lead's value of."""
    candidate_person_keys: list[str] | None = None
    candidate_names: list[str | None] | None = None
    candidate_hashes: list[str] | None = None
    """The candidate's ``identifiers_hash`` when dbt normalized its keys."""
    rejected_person_keys: list[str] | None = None
    """The persons a reviewer rejected for the lead as it is (its identifiers hash)."""


class ChangedPersonKey(NamedTuple):
    """A key of a registry person changed since the last build, normalized now."""

    person_key: str
    key_type: str
    key_value: str | None
    full_name: str | None
    identifiers_hash: str


class StagedDecision(NamedTuple):
    """One decided lead, in the order of the staging table's ``COPY`` columns (a tuple:
    tens of thousands are made per second)."""

    lead_source_pk: str
    last_attempt_id: int
    """The newest attempt of the lead when the stream read it."""
    lead_created_at: datetime | None
    outcome: str
    fail_reason: str | None
    match_rule: str | None
    match_score: float | None
    person_key: str | None
    evidence: str
    """JSON text."""
    identifiers_hash: str
    """The lead's, when the stream read it: the write checks the live lead against it."""
    person_identifiers_hash: str | None
    """The chosen person's, when the decision read its keys (None unless matched): the
    write checks the live registry row against it."""


SKIP_REASONS = (
    "attempted_meanwhile",
    "lead_deleted",
    "claimed_meanwhile",
    "linked_meanwhile",
    "changed_since_read",
    "rejected_meanwhile",
)
"""Why the write left a staged lead out, first match wins: another matcher attempted it
since the stream read it; the lead is gone; it was claimed; it got a link (a lead decided
failed; one decided matched is recorded, see ``StagedWrite.linked_meanwhile``); its
identifiers changed; a reviewer rejected the chosen person since the stream read the lead.
None of these gets an attempts-log row: the lead left the backlog, or the next run decides
it on what it is then."""


class StagedWrite(NamedTuple):
    links_written: int
    origins_written: int
    skipped: dict[str, str]
    """Leads left out, with their reason (one of ``SKIP_REASONS``)."""
    person_changed: list[str]
    """Leads decided matched whose person's registry row changed since the decision read
    it: recorded as failed ``person_changed``, no link."""
    linked_meanwhile: list[str]
    """Leads decided matched whose link insert found someone else's link: nothing
    written for them yet (the caller records them)."""
    written_at: datetime
    """The time stamped on every row of the batch."""


Outcome = Literal["matched", "failed"]

NOTHING: Mapping[str, Any] = MappingProxyType({})
"""An empty, read-only mapping: the default keys and evidence of the records below."""


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


class Person(NamedTuple):
    person_key: str
    full_name: str | None


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
