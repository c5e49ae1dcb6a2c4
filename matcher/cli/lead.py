"""``kpi-red explain`` and ``kpi-red unlink``: one lead, told or taken back."""

from __future__ import annotations

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


def _rules(ctx: Context) -> Any:
    from matcher.normalize import NormalizationRules

    return NormalizationRules.from_vars(ctx.settings.vars)


# --- explain ------------------------------------------------------------------------------


@click.command()
@connection_options
@click.argument("lead_id")
@json_option
@click.pass_obj
@handle_errors
def explain(ctx: Context, lead_id: str, as_json: bool) -> None:
    """Everything about one lead: identifiers (and why one is not usable), its reason and
    queue status, every attempt with its candidates, its link and origin, its reviews.

    Example: kpi-red explain L000123 --json
    """
    from matcher import explain as story_of
    from matcher import match, names
    from matcher.store import review as store_review
    from matcher.store import stream
    from matcher.store.base import connect

    tables = ctx.settings.tables
    with connect(ctx.connection.conninfo) as conn:
        conn.read_only = True
        story = store_review.lead_story(conn, tables=tables, lead=lead_id)
        if story is None:
            raise click.ClickException(f"no lead {lead_id!r} in {'.'.join(tables.leads)}")
        rules = _rules(ctx)
        keys = story_of.identifiers(story["lead"], rules=rules, holders=[])
        present = {key["key_type"]: key["normalized"] for key in keys if key["normalized"]}
        holders = store_review.key_holders(conn, tables=tables, keys=present)
        wanted = [
            person
            for attempt in story["attempts"]
            for person in story_of.candidate_keys(attempt["evidence"], attempt["person_key"])
        ]
        wanted += [row["person_key"] for row in story["link"]]
        persons = store_review.persons(conn, tables=tables, person_keys=wanted)
        weights = names.TokenWeights.from_names(stream.sample_names(conn))

    def name_score(lead_name: str | None, person_name: str | None) -> float | None:
        left, right = names.tokens(lead_name), names.tokens(person_name)
        if left is None or right is None:
            return None
        return float(names.compare(left, right, weights).score)

    explained = story_of.assemble(
        story,
        rules=rules,
        holders=holders,
        persons=persons,
        name_score=name_score,
        name_threshold=match.DEFAULT_NAME_THRESHOLD,
    )
    if as_json:
        echo_json(explained)
    else:
        click.echo(story_of.render(explained))


# --- unlink -------------------------------------------------------------------------------


@click.command()
@connection_options
@click.argument("lead_id")
@click.option("--reason", required=True, help="Why the link is wrong (logged).")
@click.option("--force", is_flag=True, help="Also a link made by another system.")
@reviewer_option
@json_option
@click.pass_obj
@handle_errors
def unlink(
    ctx: Context, lead_id: str, reason: str, force: bool, reviewer: str, as_json: bool
) -> None:
    """Take back a wrong link made by the matcher or a review: the link is removed, the
    removal logged, the person rejected for the lead, and the lead is red again.

    Example: kpi-red unlink L000123 --reason "different person: checked the ID card"
    """
    from matcher.store import review as store_review
    from matcher.store.base import connect

    if not reason.strip():
        raise click.ClickException("--reason is empty: say why the link is wrong")
    check_agreement(ctx)
    tables = ctx.settings.tables
    with connect(ctx.connection.conninfo, autocommit=True) as conn:
        result = store_review.unlink(
            conn,
            tables=tables,
            lead=lead_id,
            reason=reason.strip(),
            reviewer=reviewer,
            force=force,
            run_id=new_run_id("unlink"),
        )
    if result["person_key"] is None:
        raise click.ClickException(f"lead {lead_id!r} has no link")
    if not result["removed"]:
        raise click.ClickException(
            f"lead {lead_id!r} is linked to {result['person_key']} by {result['linked_by']!r},"
            " not by kpi-red: left alone (--force to remove it anyway)"
        )
    if as_json:
        echo_json({"lead_source_pk": lead_id, **result})
    else:
        click.echo(
            f"unlinked {lead_id} from {result['person_key']} (linked by {result['linked_by']}"
            f" at {result['linked_at']:%Y-%m-%d %H:%M:%S}); {result['person_key']} rejected for"
            f" it; it is red again from {result['removed_at']:%Y-%m-%d %H:%M:%S}"
        )
