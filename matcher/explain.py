"""One lead's story, pure: assembled from what ``matcher.store.review`` read, rendered as text or
JSON. No database, no Click."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from matcher.normalize import NormalizationRules
from matcher.review import KEY_TYPES, WHAT_FIXES, candidate, candidate_keys


def identifiers(
    lead: Mapping[str, Any],
    *,
    rules: NormalizationRules,
    holders: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Each identifier: raw, normalized (the shared rules), and whether it is usable; if
    not, why (absent, malformed, blocklisted, shared by N registry persons)."""
    normalized = {
        "document": rules.document(lead.get("document_type"), lead.get("document_number")),
        "phone": rules.phone(lead.get("phone")),
        "email": rules.email(lead.get("email")),
    }
    raw = {
        "document": " ".join(
            str(part) for part in (lead.get("document_type"), lead.get("document_number")) if part
        )
        or None,
        "phone": lead.get("phone"),
        "email": lead.get("email"),
    }
    by_type = {row["key_type"]: row for row in holders}
    result = []
    for key_type in KEY_TYPES:
        value = normalized[key_type]
        found = by_type.get(key_type) or {}
        count = int(found.get("holders") or 0)
        if not raw[key_type] or not str(raw[key_type]).strip():
            status = "absent"
        elif value is None:
            status = "malformed"
        elif (key_type, value) in rules.blocklisted or found.get("junk_reason") == "blocklist":
            status = "blocklisted"
        elif found.get("junk_reason") == "shared":
            status = f"shared by {count} registry persons"
        else:
            status = "usable"
        result.append(
            {
                "key_type": key_type,
                "raw": raw[key_type],
                "normalized": value,
                "status": status,
                "is_usable": status == "usable",
                "registry_holders": count,
                "holder_person_keys": list(found.get("person_keys") or ()) if value else [],
            }
        )
    return result


NameScorer = Callable[[str | None, str | None], float | None]
"""The lead's name against a person's, 0-100 (None: a name is missing)."""


def attempt_candidates(
    attempt: Mapping[str, Any],
    persons: Mapping[str, Mapping[str, Any]],
    lead_keys: Mapping[str, str | None],
    *,
    lead_name: str | None = None,
    name_score: NameScorer | None = None,
    name_threshold: float | None = None,
) -> list[dict[str, Any]]:
    """The persons an attempt weighed, side by side: their name and keys now, the keys
    they share with the lead, the name score against its threshold, the edit of a near
    match, whether a reviewer had rejected them."""
    evidence = attempt.get("evidence") or {}
    rejected = set(evidence.get("rejected") or ())
    near: dict[str, Mapping[str, Any]] = {}
    for found in (evidence.get("near") or {}).values():
        for item in found.get("candidates") or ():
            near.setdefault(
                str(item["person_key"]), {**item, "lead_value": found.get("lead_value")}
            )
    rows = []
    for person_key in candidate_keys(evidence, attempt.get("person_key")):
        option = candidate(person_key, persons.get(person_key), lead_keys=lead_keys)
        row: dict[str, Any] = {
            "person_key": person_key,
            "name": option.full_name,
            "keys": dict(option.keys),
            "agreeing_keys": list(option.agreeing),
            "rejected_by_review": person_key in rejected,
        }
        if evidence.get("person_key") == person_key or attempt.get("person_key") == person_key:
            row["name_score"] = evidence.get("name_score", attempt.get("match_score"))
            row["name_threshold"] = evidence.get("name_threshold")
        if person_key in near:
            row["name_score"] = near[person_key].get("name_score")
            row["near_edit"] = near[person_key].get("edit")
            row["near_value"] = near[person_key].get("person_value")
        if row.get("name_score") is None and name_score is not None:
            # not in the evidence (a conflict, an ambiguous key): the names compared now
            row["name_score"] = name_score(lead_name, option.full_name)
            row["name_score_is_now"] = True
        if row.get("name_threshold") is None:
            row["name_threshold"] = name_threshold
        rows.append(row)
    return rows


def _when_taken(state: Mapping[str, Any]) -> str:
    """When a matcher run takes an eligible lead: now, or (red with no trace the live
    view can see: a link removed, a claim withdrawn, a backfill) after the next build."""
    if not state["is_eligible"]:
        return ""
    if state.get("is_due") is False:
        return " (eligible; the matcher takes it after the next dbt build)"
    return " (eligible now)"


def assemble(
    story: Mapping[str, Any],
    *,
    rules: NormalizationRules,
    holders: Sequence[Mapping[str, Any]],
    persons: Mapping[str, Mapping[str, Any]],
    name_score: NameScorer | None = None,
    name_threshold: float | None = None,
) -> dict[str, Any]:
    """The whole story of one lead as one JSON-ready mapping (the sections of
    ``kpi-red explain``)."""
    lead = story["lead"]
    keys = identifiers(lead, rules=rules, holders=holders)
    lead_keys = {row["key_type"]: row["normalized"] if row["is_usable"] else None for row in keys}
    backlog = (story.get("backlog_row") or [None])[0]
    queue = (story.get("queue_row") or [None])[0]
    link = (story.get("link") or [None])[0]
    claims = int((story.get("claims") or [{"claims": 0}])[0]["claims"])
    attempts = [
        {
            **{name: attempt[name] for name in attempt if name != "evidence"},
            "candidates": attempt_candidates(
                attempt,
                persons,
                lead_keys,
                lead_name=lead["full_name"],
                name_score=name_score,
                name_threshold=name_threshold,
            ),
            "evidence": attempt.get("evidence"),
        }
        for attempt in story.get("attempts") or ()
    ]
    last = attempts[-1] if attempts else None
    state: dict[str, Any] = {
        "is_red": backlog is not None,
        "reason_bucket": backlog["reason_bucket"] if backlog else None,
        "what_fixes_it": WHAT_FIXES.get(backlog["reason_bucket"]) if backlog else None,
        "age_days": backlog["age_days"] if backlog else None,
        "next_attempt_at": backlog["next_attempt_at"] if backlog else None,
        "next_attempt_rule": _next_rule(backlog, last),
        "is_eligible": backlog["is_eligible"] if backlog else None,
        "is_due": backlog.get("is_due") if backlog else None,
        "queue_status": queue["status"] if queue else None,
        "queue": queue,
        "claims": claims,
    }
    return {
        "lead_source_pk": lead["lead_id"],
        "created_at": lead["created_at"],
        "full_name": lead["full_name"],
        "identifiers_hash": lead["identifiers_hash"],
        "identifiers": keys,
        "state": state,
        "attempts": attempts,
        "link": link,
        "review_decisions": story.get("decisions") or [],
        "link_removals": story.get("removals") or [],
    }


def _next_rule(backlog: Mapping[str, Any] | None, last: Mapping[str, Any] | None) -> str | None:
    if backlog is None:
        return None
    if backlog["reason_bucket"] == "missing_identifiers":
        return "none: no usable identifier (fix the lead upstream)"
    if last is None:
        return "new lead: the next run"
    if backlog["reason_bucket"] == "pending_match":
        return "identifiers changed since the last attempt: the next run"
    return (
        f"retry back-off after {backlog['attempt_count']} attempts, or sooner when a"
        " registry person holding one of its keys (or one edit from one) changes"
    )


def render(explained: Mapping[str, Any]) -> str:
    """The story as one screen of text."""
    lines = [
        f"lead {explained['lead_source_pk']}  created {_time(explained['created_at'])}",
        f"  name      {explained['full_name'] or '-'}",
        f"  hash      {explained['identifiers_hash']}",
        "identifiers",
    ]
    for key in explained["identifiers"]:
        lines.append(
            f"  {key['key_type']:<9} {key['raw'] or '-'!s:<28}"
            f" -> {key['normalized'] or '-'!s:<22} {key['status']}"
        )
    state = explained["state"]
    lines.append("state")
    if state["is_red"]:
        lines.append(
            f"  red: {state['reason_bucket']} (fix: {state['what_fixes_it']}), queue status"
            f" {state['queue_status'] or '- (next dbt build)'}, {state['age_days']} days old"
        )
        lines.append(
            f"  next attempt {_time(state['next_attempt_at'])}{_when_taken(state)}:"
            f" {state['next_attempt_rule']}"
        )
    else:
        lines.append(
            f"  not red (queue status {state['queue_status'] or '-'}; claims {state['claims']})"
        )
    lines.append(f"attempts ({len(explained['attempts'])})")
    for attempt in explained["attempts"]:
        outcome = attempt["outcome"] if attempt["outcome"] == "matched" else attempt["fail_reason"]
        score = "" if attempt["match_score"] is None else f" score {attempt['match_score']:.0f}"
        lines.append(
            f"  {_time(attempt['attempted_at'])}  run {attempt['run_id']}  {outcome}"
            f"{' ' + attempt['match_rule'] if attempt['match_rule'] else ''}{score}"
        )
        for option in attempt["candidates"]:
            extra = []
            if option.get("name_score") is not None:
                threshold = option.get("name_threshold")
                extra.append(
                    f"name {option['name_score']:.0f}"
                    + (f"/{threshold:.0f}" if threshold is not None else "")
                    + (" (now)" if option.get("name_score_is_now") else "")
                )
            if option.get("near_edit"):
                extra.append(f"one edit: {option['near_edit']} -> {option['near_value']}")
            if option["rejected_by_review"]:
                extra.append("rejected by review")
            lines.append(
                f"    {option['person_key']:<12} {option['name'] or '-'!s:<30}"
                f" agree: {'+'.join(option['agreeing_keys']) or '-':<20} {'; '.join(extra)}"
            )
    link = explained["link"]
    lines.append("link")
    if link:
        lines.append(
            f"  -> {link['person_key']} by {link['linked_by']} ({link['match_rule']})"
            f" at {_time(link['linked_at'])}, run {link['run_id']}"
        )
        origin = (
            f"  origin: {link['origin_tag']} {link['origin_source_pk']}"
            f" created {_time(link['origin_created_at'])}"
            if link["origin_tag"] is not None
            else "  origin: ORIGIN_MISSING"
        )
        lines.append(origin)
    else:
        lines.append("  none")
    lines.append(
        f"reviews ({len(explained['review_decisions'])} decisions,"
        f" {len(explained['link_removals'])} links removed)"
    )
    for decision in explained["review_decisions"]:
        note = f"  {decision['note']!r}" if decision["note"] else ""
        lines.append(
            f"  {_time(decision['decided_at'])}  {decision['reviewer']}  {decision['decision']}"
            f" {decision['person_key']} via {decision['decided_via']}{note}"
        )
    for removal in explained["link_removals"]:
        lines.append(
            f"  {_time(removal['removed_at'])}  {removal['removed_by']}  unlinked"
            f" {removal['person_key']} (made by {removal['linked_by']}): {removal['reason']}"
        )
    return "\n".join(lines)


def _time(value: Any) -> str:
    if value is None:
        return "-"
    text = value.isoformat(sep=" ", timespec="seconds") if hasattr(value, "isoformat") else value
    return str(text)
