"""``kpi-red review``: settle the leads the matcher will not decide, on a terminal or
through a CSV."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import click

from matcher.cli.common import (
    Context,
    connection_options,
    echo_json,
    handle_errors,
    json_option,
    new_run_id,
    reviewer_option,
)
from matcher.cli.match import check_agreement

# --- review -------------------------------------------------------------------------------


def _queue(ctx: Context, reasons: tuple[str, ...], limit: int | None) -> list[Any]:
    from matcher import review
    from matcher.store import review as store_review
    from matcher.store.base import connect

    tables = ctx.settings.tables
    with connect(ctx.connection.conninfo) as conn:
        rows = store_review.review_queue(
            conn, tables=tables, reasons=reasons or review.REVIEW_REASONS
        )
        leads = [row["lead_source_pk"] for row in rows]
        rejected = store_review.rejections(conn, tables=tables, leads=leads) if leads else []
        wanted = [
            person
            for row in rows
            for person in review.candidate_keys(row["evidence"], row["person_key"])
        ]
        persons = store_review.persons(conn, tables=tables, person_keys=wanted)
    queue = review.queue_leads(rows, persons, rejected)
    return queue[:limit] if limit else queue


reason_option = click.option(
    "--reason",
    "reasons",
    multiple=True,
    type=click.Choice(["conflict", "low_confidence", "ambiguous", "name_mismatch"]),
    help="Only leads in this reason bucket (repeatable) [default: all four].",
)
limit_option = click.option("--limit", type=click.IntRange(min=1), help="At most this many leads.")


@click.group(invoke_without_command=True)
@connection_options
@reason_option
@limit_option
@reviewer_option
@click.pass_context
@handle_errors
def review(
    click_ctx: click.Context, reasons: tuple[str, ...], limit: int | None, reviewer: str
) -> None:
    """Settle the leads the matcher will not decide (conflict, low_confidence,
    ambiguous, name_mismatch): one at a time on a terminal, or through a CSV.

    \b
    On a terminal, for each lead and its candidates side by side:
      l N   link the lead to candidate N      r N   not candidate N
      r a   none of the candidates            s     skip        b  back     q  quit
    Every answer is saved at once (append-only, under the matcher's per-lead locks).

    Example: kpi-red review --reason conflict
    """
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.ensure_object(Context)
    check_agreement(ctx)
    queue = _queue(ctx, reasons, limit)
    if not queue:
        click.echo("nothing to review")
        return
    _interactive(ctx, queue, reviewer=reviewer)


def _show(position: int, total: int, lead: Any) -> None:
    click.echo("")
    click.echo(
        f"[{position}/{total}] lead {lead.lead_source_pk}  {lead.reason}  {lead.age_days} days"
    )
    click.echo(
        f"  lead       {lead.full_name or '-'!s:<32} doc {lead.keys.get('document') or '-':<14}"
        f" phone {lead.keys.get('phone') or '-':<13} email {lead.keys.get('email') or '-'}"
    )
    for number, option in enumerate(lead.candidates, start=1):
        mark = "  (rejected)" if option.rejected else ""
        keys = option.keys
        click.echo(
            f"  {number:>2} {option.person_key:<8} {option.full_name or '-'!s:<32}"
            f" doc {keys.get('document') or '-':<14} phone {keys.get('phone') or '-':<13}"
            f" email {keys.get('email') or '-'}  agree: {'+'.join(option.agreeing) or '-'}{mark}"
        )


def _interactive(ctx: Context, queue: list[Any], *, reviewer: str) -> None:
    from matcher import review
    from matcher.store import review as store_review
    from matcher.store.base import connect

    run_id = new_run_id("review")
    position = 0
    saved = 0
    with connect(ctx.connection.conninfo, autocommit=True) as conn:
        while 0 <= position < len(queue):
            lead = queue[position]
            _show(position + 1, len(queue), lead)
            answer = click.prompt("  l N / r N / r a / s / b / q", default="s", show_default=False)
            words = answer.strip().lower().split()
            command, argument = (
                (words[0][:1], words[1] if len(words) > 1 else words[0][1:]) if words else ("s", "")
            )
            if command == "q":
                break
            if command in ("s", "b"):
                position += 1 if command == "s" else -1
                position = max(position, 0)
                continue
            open_options = {
                str(number): option
                for number, option in enumerate(lead.candidates, start=1)
                if not option.rejected
            }
            if command == "l" and argument in open_options:
                chosen = [(open_options[argument], "link")]
            elif command == "r" and argument in ("a", "all"):
                chosen = [(option, "reject") for option in open_options.values()]
            elif command == "r" and argument in open_options:
                chosen = [(open_options[argument], "reject")]
            else:
                click.echo(f"  ? {answer!r}: l N, r N, r a, s, b or q (N: an open candidate)")
                continue
            outcomes = store_review.apply_decisions(
                conn,
                [
                    review.Decision(
                        lead_source_pk=lead.lead_source_pk,
                        person_key=option.person_key,
                        decision=decision,
                        identifiers_hash=lead.identifiers_hash,
                    )
                    for option, decision in chosen
                ],
                tables=ctx.settings.tables,
                reviewer=reviewer,
                decided_via="terminal",
                run_id=run_id,
            )
            for outcome in outcomes:
                click.echo(f"  {outcome.decision.person_key}: {outcome.text}")
            saved += sum(outcome.applied for outcome in outcomes)
            rejected_now = {
                outcome.decision.person_key
                for outcome in outcomes
                if outcome.status in ("rejected", "unchanged")
                and outcome.decision.decision == "reject"
            }
            lead = queue[position] = type(lead)(
                **{
                    **lead.__dict__,
                    "candidates": tuple(
                        type(option)(**{**option.__dict__, "rejected": True})
                        if option.person_key in rejected_now
                        else option
                        for option in lead.candidates
                    ),
                }
            )
            settled = (
                any(outcome.status != "rejected" for outcome in outcomes)
                or not lead.open_candidates
            )
            if settled:
                position += 1
    click.echo(f"saved {saved} decisions (run {run_id}); they count after the next dbt build")


@review.command("list")
@connection_options
@reason_option
@limit_option
@json_option
@click.pass_obj
@handle_errors
def review_list(ctx: Context, reasons: tuple[str, ...], limit: int | None, as_json: bool) -> None:
    """The leads whose last outcome needs a person, oldest first, each with its candidates.

    Example: kpi-red review list --reason ambiguous --limit 20
    """
    queue = _queue(ctx, reasons, limit)
    if as_json:
        echo_json(
            [
                {
                    **{
                        name: value for name, value in lead.__dict__.items() if name != "candidates"
                    },
                    "candidates": [option.__dict__ for option in lead.candidates],
                }
                for lead in queue
            ]
        )
        return
    if not queue:
        click.echo("nothing to review")
        return
    for position, lead in enumerate(queue, start=1):
        _show(position, len(queue), lead)


@review.command("export")
@connection_options
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@reason_option
@limit_option
@click.pass_obj
@handle_errors
def review_export(ctx: Context, file: str, reasons: tuple[str, ...], limit: int | None) -> None:
    """Write the review queue as CSV: one row per lead and candidate; fill `decision`
    (link, reject or blank) and `note`, then `kpi-red review import`.

    Example: kpi-red review export queue.csv --reason conflict
    """
    from matcher import review

    queue = _queue(ctx, reasons, limit)
    rows = review.export_rows(queue)
    if file == "-":
        review.write_csv(rows, sys.stdout)
    else:
        with Path(file).open("w", encoding="utf-8", newline="") as out:
            review.write_csv(rows, out)
        click.echo(f"wrote {len(rows)} rows ({len(queue)} leads) to {file}")


@review.command("import")
@connection_options
@click.argument("file", type=click.Path(dir_okay=False, exists=True, allow_dash=True))
@reviewer_option
@json_option
@click.pass_obj
@handle_errors
def review_import(ctx: Context, file: str, reviewer: str, as_json: bool) -> None:
    """Apply the decisions of an edited export. Each refused row gets its own line (junk,
    unknown lead or person, lead linked or claimed, a lead changed since the export, two
    links for one lead); the good rows are applied. Importing a file twice changes
    nothing. Exit code 1 when a row was refused.

    Example: kpi-red review import queue.csv --reviewer ana
    """
    from matcher import review
    from matcher.store import review as store_review
    from matcher.store.base import connect

    check_agreement(ctx)
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8-sig")
        parsed = review.parse_csv(text)
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    run_id = new_run_id("review")
    with connect(ctx.connection.conninfo, autocommit=True) as conn:
        outcomes = store_review.apply_decisions(
            conn,
            parsed.decisions,
            tables=ctx.settings.tables,
            reviewer=reviewer,
            decided_via="csv",
            run_id=run_id,
        )
    refused = [(line, why) for line, why in parsed.errors]
    refused += [
        (outcome.decision.row or 0, f"lead {outcome.decision.lead_source_pk}: {outcome.text}")
        for outcome in outcomes
        if not outcome.applied and outcome.status != "unchanged"
    ]
    counts = {
        "linked": sum(outcome.status == "linked" for outcome in outcomes),
        "rejected": sum(outcome.status == "rejected" for outcome in outcomes),
        "unchanged": sum(outcome.status == "unchanged" for outcome in outcomes),
        "blank": parsed.blank,
        "refused": len(refused),
    }
    if as_json:
        echo_json(
            {
                **counts,
                "run_id": run_id,
                "refused_rows": [{"line": line, "why": why} for line, why in sorted(refused)],
            }
        )
    else:
        for line, why in sorted(refused):
            click.echo(f"line {line}: {why}")
        click.echo(
            f"linked {counts['linked']}, rejected {counts['rejected']}, already recorded"
            f" {counts['unchanged']}, blank {counts['blank']}, refused {counts['refused']}"
            f" (run {run_id})"
        )
    if refused:
        sys.exit(1)
