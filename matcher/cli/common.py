"""What every command shares: the project and database of the run (``Context``), the
connection options, JSON output, and expected failures as one line."""

from __future__ import annotations

import functools
import getpass
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from matcher import connection as connections
from matcher import embedded
from matcher.settings import ConfigError, Settings, load_settings

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
    def settings(self) -> Settings:
        from matcher.project import ProjectError, parse_cli_vars

        try:
            return load_settings(
                Path(self.project_dir).resolve() if self.project_dir else None,
                cli_vars=parse_cli_vars(self.vars),
            )
        except (ConfigError, ProjectError) as exc:
            raise click.ClickException(str(exc)) from None

    @functools.cached_property
    def connection(self) -> connections.Connection:
        """The database: with no configuration at all, the embedded server, started."""
        try:
            found = connections.resolve_connection(
                settings=self.settings,
                dsn=self.dsn,
                profiles_dir=self.profiles_dir,
                target=self.target,
            )
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        if isinstance(found, connections.EmbeddedServer):
            return embedded.connection(found)
        return found


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

reviewer_option = click.option(
    "--reviewer",
    envvar="KPI_RED_REVIEWER",
    default=lambda: os.environ.get("KPI_RED_REVIEWER") or getpass.getuser(),
    show_default="your login",
    help="Who decides, as the logs record it (beside the database role). [env: KPI_RED_REVIEWER]",
)


def new_run_id(kind: str) -> str:
    """A review's or an unlink's run id, as the logs record it."""
    return f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str, ensure_ascii=False))


def handle_errors(command: F) -> F:
    """Expected failures (config, database, dbt) become one line and exit code 1."""
    from matcher.dbt import DbtError
    from matcher.store.base import DatabaseError

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ConfigError, DatabaseError, DbtError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]
