"""``kpi-red match``, ``repair-origin`` and ``cycle``: the matcher's commands."""

from __future__ import annotations

import click

from matcher.cli.common import Context, connection_options, echo_json, handle_errors, json_option
from matcher.settings import DEFAULT_BATCH_SIZE, DEFAULT_WRITERS


def check_agreement(ctx: Context) -> None:
    """One line and exit 1 when kpi-red's settings are not those of the last dbt build."""
    from matcher import agreement
    from matcher.store import admin

    agreement.check(ctx.settings, admin.built_settings(ctx.connection.conninfo))


CYCLE_BUSY_EXIT = 75  # EX_TEMPFAIL: another cycle is running; try again later

batch_size_option = click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Leads per transaction (each writer locks them until it commits).",
)


@click.command("match")
@connection_options
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Most leads to claim in this run (0: the whole eligible backlog).",
)
@batch_size_option
@click.option(
    "--writers",
    type=click.IntRange(1, 8),
    default=DEFAULT_WRITERS,
    show_default=True,
    help="Batches written at once, each on its own connection.",
)
@click.option("--dry-run", is_flag=True, help="Decide and report, write nothing.")
@click.option(
    "--name-threshold",
    type=click.FloatRange(0, 100),
    default=85.0,
    show_default=True,
    help="Least name score (0-100) for a single key (a document, a lone phone or email) to link.",
)
@click.option(
    "--name-min-bits",
    type=click.FloatRange(0, 100),
    default=8.0,
    show_default=True,
    help="Least information (bits) of the agreeing words for a single key to link.",
)
@click.option(
    "--name-mismatch-threshold",
    type=click.FloatRange(0, 100),
    default=50.0,
    show_default=True,
    help="A name score below this fails a single key as name_mismatch (between it and "
    "--name-threshold: low_confidence).",
)
@click.option(
    "--near/--no-near",
    default=True,
    show_default=True,
    help="Also try documents and phones one edit (typo) away when the exact keys find "
    "nobody, or a person whose name clearly differs.",
)
@click.option(
    "--near-name-threshold",
    type=click.FloatRange(0, 100),
    default=92.0,
    show_default=True,
    help="Least name score (0-100) for a person one edit away to link.",
)
@click.option(
    "--near-name-min-bits",
    type=click.FloatRange(0, 100),
    default=11.0,
    show_default=True,
    help="Least information (bits) of the agreeing words for a person one edit away, plus "
    "one bit per doubling of the persons one edit away.",
)
@json_option
@click.pass_obj
@handle_errors
def match_command(
    ctx: Context,
    limit: int,
    batch_size: int,
    writers: int,
    dry_run: bool,
    name_threshold: float,
    name_min_bits: float,
    name_mismatch_threshold: float,
    near: bool,
    near_name_threshold: float,
    near_name_min_bits: float,
    as_json: bool,
) -> None:
    """Link eligible backlog leads to registry persons; log every attempt.

    Claims eligible leads from ops.v_cabinet_kpi_red_backlog (with --limit, the oldest;
    batches under advisory locks, so several matchers can run at once), decides per lead (two
    agreeing keys, or a single key whose holder's name agrees; else the one person a
    document or phone typo away whose name agrees strongly) and writes
    links, missing origin rows and one attempts-log row per lead, a transaction per
    batch. Run `dbt build` first. --json prints: run_id, dry_run, claimed, matched,
    matched_by_rule, failed, failed_by_reason, skipped_locked, skipped_changed,
    skipped_by_reason, persons_read_live, links_written, origins_written, batches,
    seconds, leads_per_s.

    Example: kpi-red match --limit 5000 --batch-size 1000
    """
    import sys

    from matcher import report
    from matcher.run import MatchOptions, count_eligible, run_match

    options = MatchOptions(
        limit=limit or None,
        batch_size=batch_size,
        writers=writers,
        dry_run=dry_run,
        name_threshold=name_threshold,
        name_min_bits=name_min_bits,
        name_mismatch_threshold=name_mismatch_threshold,
        near=near,
        near_name_threshold=near_name_threshold,
        near_name_min_bits=near_name_min_bits,
    )
    conninfo = ctx.connection.conninfo
    check_agreement(ctx)
    if not sys.stderr.isatty():
        summary = run_match(conninfo, settings=ctx.settings, options=options)
    else:
        eligible = count_eligible(conninfo)
        total = min(eligible, limit) if limit else eligible
        with click.progressbar(length=total, label="matching", file=sys.stderr) as bar:
            summary = run_match(
                conninfo, settings=ctx.settings, options=options, progress=bar.update
            )
    if as_json:
        echo_json(summary.to_json())
    else:
        click.echo(report.render(summary))


@click.command("repair-origin")
@connection_options
@click.option("--dry-run", is_flag=True, help="Count the ORIGIN_MISSING persons, write nothing.")
@json_option
@click.pass_obj
@handle_errors
def repair_origin(ctx: Context, dry_run: bool, as_json: bool) -> None:
    """Add an origin row for every linked person without one (ORIGIN_MISSING).

    Whoever linked them: the origin is the person's earliest link (for a cabinet lead,
    origin_tag 'cabinet_lead' and the lead's creation time). Idempotent.

    Example: kpi-red repair-origin --dry-run
    """
    from matcher.store import admin

    check_agreement(ctx)
    added = admin.repair_origin_at(
        ctx.connection.conninfo, tables=ctx.settings.tables, dry_run=dry_run
    )
    if as_json:
        echo_json({"origins_added": added, "dry_run": dry_run})
    elif dry_run:
        click.echo(f"{added} ORIGIN_MISSING persons would get an origin row (dry run)")
    else:
        click.echo(f"added {added} origin rows")


@click.command()
@connection_options
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Most leads the match step claims (0: the whole eligible backlog).",
)
@batch_size_option
@click.option("--full-refresh", is_flag=True, help="Rebuild dbt's incremental models first.")
@click.option(
    "--select",
    "-s",
    multiple=True,
    metavar="SELECTOR",
    help="dbt node selection for both builds (repeatable) [default: in a host project,"
    " package:kpi_red_recovery; else everything].",
)
@click.option(
    "--skip-history-tests",
    is_flag=True,
    help="Leave out the data tests that read the whole history (tag:whole_history): for"
    " the hourly cycles, with one cycle a day without this flag.",
)
@json_option
@click.pass_obj
@handle_errors
def cycle(
    ctx: Context,
    limit: int,
    batch_size: int,
    full_refresh: bool,
    select: tuple[str, ...],
    skip_history_tests: bool,
    as_json: bool,
) -> None:
    """One scheduled step: init, dbt build, match, repair origin, dbt build.

    Guarded by a PostgreSQL advisory lock: a second cycle on the same database exits at
    once with code 75. dbt uses the same project, profile, target and --vars as kpi-red;
    with --dsn (or KPI_RED_DSN) a temporary profile is made from the DSN, its password
    passed in DBT_ENV_SECRET_PGPASSWORD, never written to a file. Run it as the dbt role.

    A failed build names the failed nodes; the match step still runs on the last good
    build when its relations are there (they survive a failed build), and the cycle
    exits 1 at the end.

    \b
    cron, from the project's directory (hourly; every data test once a day):
      17 * * * *  .venv/bin/kpi-red cycle --skip-history-tests --json >> cycle.log
      47 4 * * *  .venv/bin/kpi-red cycle --json >> cycle.log
    Example: kpi-red cycle --limit 20000
    """
    import os
    import sys

    from matcher import cycle as cycles
    from matcher import report
    from matcher.connection import dbt_target
    from matcher.run import MatchOptions

    conninfo = ctx.connection.conninfo
    settings = ctx.settings
    failure: cycles.CycleBuildError | None = None
    with dbt_target(
        conninfo,
        settings=settings,
        profiles_dir=ctx.profiles_dir,
        target=ctx.target,
        uses_dsn=bool(ctx.dsn or os.environ.get("KPI_RED_DSN")),
    ) as target:
        on_step = None if as_json else (lambda name: click.echo(f"-> {name}", err=True))
        try:
            result = cycles.run_cycle(
                conninfo,
                settings=settings,
                dbt_target=target,
                options=MatchOptions(limit=limit or None, batch_size=batch_size),
                full_refresh=full_refresh,
                select=select,
                skip_history_tests=skip_history_tests,
                on_step=on_step,
            )
        except cycles.CycleBusyError as exc:
            click.echo(f"Error: {exc}; exiting (code {CYCLE_BUSY_EXIT})", err=True)
            sys.exit(CYCLE_BUSY_EXIT)
        except cycles.CycleBuildError as exc:
            failure, result = exc, exc.report
    if as_json:
        echo_json(result.to_json())
    else:
        for index, (name, seconds) in enumerate(result.steps):
            line = f"{name:<13} {seconds:8.2f} s"
            slowest = ", ".join(str(node) for node in result.slowest.get(index, ()))
            click.echo(f"{line}   slowest: {slowest}" if slowest else line)
        if result.origins_repaired:
            click.echo(f"origin rows added for {result.origins_repaired} ORIGIN_MISSING persons")
        if result.summary is not None:
            click.echo(report.render(result.summary))
    if failure is not None:
        raise click.ClickException(str(failure))
