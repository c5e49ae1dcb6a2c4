"""The summary of a matcher run: counted as batches finish, shown as a table or JSON.

JSON keys (``kpi-red match --json``):

- ``run_id``: the run's id, also in every attempts-log row and link it wrote;
- ``dry_run``: true when nothing was written;
- ``claimed``: leads attempted by this run (each got exactly one decision);
- ``matched`` / ``matched_by_rule``: leads linked, in total and per ``match_rule``;
- ``failed`` / ``failed_by_reason``: leads not linked, in total and per ``fail_reason``;
- ``skipped_locked``: leads held by another matcher at that moment (left to it);
- ``skipped_changed`` / ``skipped_by_reason``: leads left out because the live sources no
  longer matched what this run had read (no attempts-log row; the next run decides them
  again if they are still red), in total and per reason: ``attempted_meanwhile`` (another
  matcher), ``lead_deleted``, ``claimed_meanwhile``, ``linked_meanwhile`` (decided failed;
  decided matched it is recorded as a ``conflict``, or matched when it is the same
  person), ``changed_since_read`` (the lead's identifiers). A match whose registry person
  changed is recorded, as failed ``person_changed``;
- ``persons_read_live``: registry persons changed since the last ``dbt build``, whose
  keys this run read as they are now instead of as the build stored them;
- ``links_written``, ``origins_written``: rows added to identity_links / identity_origin;
- ``batches``, ``seconds``, ``leads_per_s`` (claimed leads per second of the whole run).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from matcher.records import Decision


@dataclass
class RunSummary:
    run_id: str
    dry_run: bool = False
    claimed: int = 0
    matched_by_rule: Counter[str] = field(default_factory=Counter)
    failed_by_reason: Counter[str] = field(default_factory=Counter)
    skipped_locked: int = 0
    skipped_by_reason: Counter[str] = field(default_factory=Counter)
    persons_read_live: int = 0
    links_written: int = 0
    origins_written: int = 0
    batches: int = 0
    seconds: float = 0.0

    def add(
        self,
        decisions: Iterable[Decision],
        *,
        skipped_locked: int = 0,
        skipped: Mapping[str, int] | None = None,
        links_written: int = 0,
        origins_written: int = 0,
    ) -> None:
        for decision in decisions:
            self.claimed += 1
            if decision.is_matched:
                self.matched_by_rule[decision.match_rule or "?"] += 1
            else:
                self.failed_by_reason[decision.fail_reason or "?"] += 1
        self.skipped_locked += skipped_locked
        self.skipped_by_reason.update(skipped or {})
        self.links_written += links_written
        self.origins_written += origins_written
        self.batches += 1

    @property
    def skipped_changed(self) -> int:
        return sum(self.skipped_by_reason.values())

    @property
    def matched(self) -> int:
        return sum(self.matched_by_rule.values())

    @property
    def failed(self) -> int:
        return sum(self.failed_by_reason.values())

    @property
    def leads_per_s(self) -> float:
        return self.claimed / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "claimed": self.claimed,
            "matched": self.matched,
            "matched_by_rule": dict(sorted(self.matched_by_rule.items())),
            "failed": self.failed,
            "failed_by_reason": dict(sorted(self.failed_by_reason.items())),
            "skipped_locked": self.skipped_locked,
            "skipped_changed": self.skipped_changed,
            "skipped_by_reason": dict(sorted(self.skipped_by_reason.items())),
            "persons_read_live": self.persons_read_live,
            "links_written": self.links_written,
            "origins_written": self.origins_written,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "leads_per_s": round(self.leads_per_s, 1),
        }


def render(summary: RunSummary) -> str:
    """The summary as a two-column table for a terminal."""
    rows: list[tuple[str, str]] = [("claimed", str(summary.claimed))]
    rows.append(("matched", str(summary.matched)))
    rows += [(f"  {rule}", str(count)) for rule, count in sorted(summary.matched_by_rule.items())]
    rows.append(("failed", str(summary.failed)))
    rows += [
        (f"  {reason}", str(count)) for reason, count in sorted(summary.failed_by_reason.items())
    ]
    rows += [
        ("skipped (locked by another matcher)", str(summary.skipped_locked)),
        ("skipped (changed since read)", str(summary.skipped_changed)),
    ]
    rows += [
        (f"  {reason}", str(count)) for reason, count in sorted(summary.skipped_by_reason.items())
    ]
    rows += [
        ("registry persons read live", str(summary.persons_read_live)),
        ("links written", str(summary.links_written)),
        ("origin rows written", str(summary.origins_written)),
        ("seconds", f"{summary.seconds:.2f}"),
        ("leads/s", f"{summary.leads_per_s:,.0f}"),
    ]
    width = max(len(label) for label, _ in rows)
    value_width = max(len(value) for _, value in rows)
    title = f"kpi-red match {summary.run_id}" + (
        " (dry run: nothing written)" if summary.dry_run else ""
    )
    lines = [title]
    lines += [f"{label:<{width}}  {value:>{value_width}}" for label, value in rows]
    return "\n".join(lines)
