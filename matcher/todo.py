"""The panel's "what to do": the red backlog now by cause, with what fixes each, the
review queue, the oldest red lead and the ORIGIN_MISSING persons; as JSON (``what_to_do``)
and as terminal lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click


def what_to_do(causes: Sequence[Mapping[str, Any]] | None) -> dict[str, Any] | None:
    """Beside the numbers: the backlog now by cause (leads, share, oldest, what fixes it,
    the review command of a reviewable cause), the review queue's size and oldest lead,
    the oldest red lead, and the ORIGIN_MISSING persons (``kpi-red cycle`` repairs them).
    None when dbt has not built the views yet."""
    if causes is None:
        return None
    by_cause = [
        {
            "reason_bucket": row["reason_bucket"],
            "leads": int(row["leads"]),
            "share_pct": float(row["share_pct"]),
            "oldest_age_days": row["oldest_age_days"],
            "fixed_by": row["fixed_by"],
            "review_command": (
                f"kpi-red review list --reason {row['reason_bucket']}"
                if row["is_reviewable"]
                else None
            ),
        }
        for row in causes
    ]
    reviewable = [row for row in causes if row["is_reviewable"]]
    ages = [int(row["oldest_age_days"]) for row in causes if row["oldest_age_days"] is not None]
    review_ages = [int(row["oldest_age_days"]) for row in reviewable]
    return {
        "backlog_by_cause": by_cause,
        "review_queue": {
            "leads": sum(int(row["leads"]) for row in reviewable),
            "oldest_age_days": max(review_ages) if review_ages else None,
        },
        "oldest_red_age_days": max(ages) if ages else None,
        "origin_missing_persons": int(causes[0]["origin_missing_persons"]) if causes else None,
    }


def render_lines(todo: Mapping[str, Any] | None) -> list[str]:
    if not todo:
        return []
    queue = todo["review_queue"]
    lines = ["", click.style("What to do", bold=True)]
    for cause in todo["backlog_by_cause"]:
        hint = f"  ({cause['review_command']})" if cause["review_command"] else ""
        lines.append(
            f"  {cause['reason_bucket']:<20}{cause['leads']:>7}  {cause['share_pct']:>5.1f}%"
            f"  oldest {dash(cause['oldest_age_days']):>3} d  fix: {cause['fixed_by']}"
            + click.style(hint, dim=True)
        )
    lines.append(
        f"  review queue {queue['leads']} leads, oldest {dash(queue['oldest_age_days'])} days;"
        f" oldest red lead {dash(todo['oldest_red_age_days'])} days;"
        f" ORIGIN_MISSING persons {dash(todo['origin_missing_persons'])}"
        + (" (kpi-red cycle repairs them)" if todo["origin_missing_persons"] else "")
    )
    return lines


def dash(value: Any) -> str:
    """A value for the terminal, ``—`` when there is none."""
    return "—" if value is None else str(value)
