"""Where the database is: a DSN, the dbt profile's target, or the embedded server.

One configuration: the dbt project and its profile. The matcher reads the same profile
and target as dbt (``--profiles-dir``, ``--target``), or a DSN from ``--dsn`` /
``KPI_RED_DSN``; with no configuration at all it uses the embedded PostgreSQL under
``.data/``. This module only works out where: it never starts a server (the command line
decides that, with ``matcher.embedded``) and never connects.
"""

from __future__ import annotations

import getpass
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from matcher import project as dbt_project
from matcher.project import ProjectError
from matcher.secrets import redact
from matcher.settings import PROFILE_NAME, ConfigError, Settings

EMBEDDED_TARGET = "embedded"
EMBEDDED_HOST_PLACEHOLDER = "__EMBEDDED_SOCKET_DIR__"
EMBEDDED_DBNAME = "kpi_red"


@dataclass(frozen=True)
class Connection:
    """A libpq connection string and a description of it that is safe to print."""

    conninfo: str
    description: str


@dataclass(frozen=True)
class EmbeddedServer:
    """The embedded server to use (``matcher.embedded`` starts it and gives its
    ``Connection``): its data directory and database."""

    data_dir: Path
    dbname: str


def embedded_data_dir(project_dir: Path) -> Path:
    return Path(os.environ.get("KPI_RED_DATA_DIR", project_dir / ".data" / "pg")).resolve()


def profiles_dir_for(project_dir: Path, profiles_dir: str | None) -> Path:
    """dbt's own search order: the flag, ``DBT_PROFILES_DIR``, the project, ``~/.dbt``."""
    if profiles_dir:
        return Path(profiles_dir).expanduser().resolve()
    if os.environ.get("DBT_PROFILES_DIR"):
        return Path(os.environ["DBT_PROFILES_DIR"]).expanduser().resolve()
    if (project_dir / "profiles.yml").is_file():
        return project_dir
    return Path("~/.dbt").expanduser()


def read_profile(
    path: Path, target: str | None, *, profile_name: str = PROFILE_NAME
) -> tuple[str, dict[str, Any]]:
    """The chosen target of a profile in a ``profiles.yml``, rendered as dbt renders it."""
    environment = dbt_project.renderer()
    try:
        profiles = dbt_project.read_yaml(path)
        profile = profiles.get(profile_name)
        if not isinstance(profile, dict):
            raise ConfigError(f"{path} has no profile named {profile_name!r}")
        chosen = (
            target
            or os.environ.get("DBT_TARGET")
            or dbt_project.render(profile.get("target"), environment)
        )
        outputs = profile.get("outputs") or {}
        if chosen not in outputs:
            known = ", ".join(sorted(outputs)) or "none"
            raise ConfigError(
                f"profile {profile_name!r} has no target {chosen!r} (targets: {known})"
            )
        return str(chosen), dbt_project.render(outputs[chosen], environment)
    except ProjectError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def conninfo_from_output(output: dict[str, Any]) -> str:
    """A libpq connection string for a dbt-postgres target: the same server, user and
    options (``role`` becomes ``-c role=...``: the matcher acts as the role dbt sets)."""
    port = output.get("port")
    if port not in (None, "") and not str(port).strip().isdigit():
        raise ConfigError(f"the dbt target's port must be a number, not {str(port)!r}")
    options = [
        f"-c {name}={_option_value(str(output[name]))}"
        for name in ("role", "search_path")
        if output.get(name) not in (None, "")
    ]
    parts = {
        "host": output.get("host"),
        "port": port,
        "user": output.get("user"),
        "password": output.get("password") or output.get("pass") or None,
        "dbname": output.get("dbname") or output.get("database"),
        "sslmode": output.get("sslmode"),
        "sslcert": output.get("sslcert"),
        "sslkey": output.get("sslkey"),
        "sslrootcert": output.get("sslrootcert"),
        "connect_timeout": output.get("connect_timeout", 10),
        "options": " ".join(options) or None,
    }
    return make_conninfo(
        **{key: str(value) for key, value in parts.items() if value not in (None, "")}
    )


def _option_value(value: str) -> str:
    """A value inside libpq's ``options``: spaces and backslashes escaped."""
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


def resolve_connection(
    *,
    settings: Settings,
    dsn: str | None = None,
    profiles_dir: str | None = None,
    target: str | None = None,
) -> Connection | EmbeddedServer:
    """Pick the database: ``--dsn``/``KPI_RED_DSN``, else the dbt profile, else the
    embedded server (returned as such: whoever wants it running starts it)."""
    dsn = dsn or os.environ.get("KPI_RED_DSN")
    if dsn:
        return Connection(conninfo=dsn, description=f"dsn {redact(dsn)}")

    directory = profiles_dir_for(settings.project_dir, profiles_dir)
    path = directory / "profiles.yml"
    if path.is_file():
        chosen, output = read_profile(path, target, profile_name=settings.profile_name)
        if output.get("type", "postgres") != "postgres":
            raise ConfigError(f"target {chosen!r} in {path} is not a postgres target")
        if str(output.get("host", "")) != EMBEDDED_HOST_PLACEHOLDER and not (
            chosen == EMBEDDED_TARGET and _is_embedded_host(settings, output)
        ):
            return Connection(
                conninfo=conninfo_from_output(output),
                description=f"target {chosen!r} of {path}",
            )
        dbname = str(output.get("dbname") or EMBEDDED_DBNAME)
    elif target or profiles_dir:
        raise ConfigError(f"no profiles.yml in {directory}")
    else:
        dbname = os.environ.get("KPI_RED_DBNAME", EMBEDDED_DBNAME)
    return EmbeddedServer(data_dir=embedded_data_dir(settings.project_dir), dbname=dbname)


def _is_embedded_host(settings: Settings, output: dict[str, Any]) -> bool:
    host = str(output.get("host", ""))
    return bool(host) and Path(host).resolve() == embedded_data_dir(settings.project_dir)


def write_embedded_profile(project_dir: Path, socket_dir: Path) -> Path | None:
    """A git-ignored profiles.yml from the example, pointing at the embedded server."""
    path = project_dir / "profiles.yml"
    example = project_dir / "profiles.example.yml"
    if path.exists() or not example.exists():
        return None
    text = example.read_text().replace(EMBEDDED_HOST_PLACEHOLDER, str(socket_dir))
    path.write_text(text)
    return path


# --- the profile dbt runs with (`kpi-red cycle`) ---------------------------------------


@dataclass(frozen=True)
class DbtTarget:
    """How dbt reaches the database: a profiles directory and target."""

    profiles_dir: Path | None
    target: str | None


PROFILE_TEMPLATE = """\
# Written by `kpi-red cycle` from the DSN; deleted after the run. No password in here:
# dbt reads it from the environment variable below.
{profile}:
  target: kpi_red_cycle
  outputs:
    kpi_red_cycle:
      type: postgres
      host: {host}
      port: {port}
      user: {user}
      password: "{{{{ env_var('{secret}', '') }}}}"
      dbname: {dbname}
      schema: {schema}
      sslmode: {sslmode}
      threads: 4
"""
PASSWORD_ENV = "DBT_ENV_SECRET_PGPASSWORD"


@contextmanager
def dbt_target(
    conninfo: str,
    *,
    settings: Settings,
    profiles_dir: str | None,
    target: str | None,
    uses_dsn: bool,
) -> Iterator[DbtTarget]:
    """The profile dbt runs with: the project's profile and target, the ones ``kpi-red``
    uses; with a DSN (or no profiles.yml) a temporary one made from ``conninfo``."""
    profile = profiles_dir_for(settings.project_dir, profiles_dir) / "profiles.yml"
    if uses_dsn or not profile.is_file():
        with dbt_profile_from_dsn(conninfo, profile_name=settings.profile_name) as made:
            yield made
    else:
        yield DbtTarget(profiles_dir=profile.parent, target=target)


@contextmanager
def dbt_profile_from_dsn(conninfo: str, *, profile_name: str = PROFILE_NAME) -> Iterator[DbtTarget]:
    """A temporary profiles.yml for the DSN; the password only in ``DBT_ENV_SECRET_*``."""
    try:
        parts = conninfo_to_dict(conninfo)
        port = int(parts.get("port") or os.environ.get("PGPORT") or 5432)
    except (ProgrammingError, ValueError):
        # the same one-line error, without secrets, that a connection attempt gives
        from matcher.store.base import DatabaseError, connect

        with connect(conninfo):
            pass
        raise DatabaseError("invalid connection string: the port must be a number") from None
    values = {
        "host": parts.get("host") or os.environ.get("PGHOST") or "localhost",
        "port": port,
        "user": parts.get("user") or os.environ.get("PGUSER") or getpass.getuser(),
        "dbname": parts.get("dbname") or os.environ.get("PGDATABASE") or "postgres",
        "schema": os.environ.get("KPI_RED_SCHEMA", "analytics"),
        "sslmode": parts.get("sslmode") or os.environ.get("PGSSLMODE") or "prefer",
    }
    text = PROFILE_TEMPLATE.format(
        profile=json.dumps(profile_name),
        secret=PASSWORD_ENV,
        **{
            key: value if isinstance(value, int) else json.dumps(str(value))
            for key, value in values.items()
        },
    )
    password = parts.get("password") or os.environ.get("PGPASSWORD")
    previous = os.environ.get(PASSWORD_ENV)
    with tempfile.TemporaryDirectory(prefix="kpi-red-profile-") as directory:
        (Path(directory) / "profiles.yml").write_text(text)
        os.environ[PASSWORD_ENV] = str(password or "")
        try:
            yield DbtTarget(profiles_dir=Path(directory), target="kpi_red_cycle")
        finally:
            if previous is None:
                os.environ.pop(PASSWORD_ENV, None)
            else:
                os.environ[PASSWORD_ENV] = previous
