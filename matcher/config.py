"""Where the database is and what the tables are called.

One configuration: the dbt profile. The matcher reads the same profile and target as
dbt (``--profiles-dir``, ``--target``), or a DSN from ``--dsn`` / ``KPI_RED_DSN``. With no
configuration at all it uses the embedded PostgreSQL under ``.data/``.
Table names come from the ``vars:`` of ``dbt_project.yml``, the same ones dbt uses.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

PROFILE_NAME = "kpi_red_recovery"
EMBEDDED_TARGET = "embedded"
EMBEDDED_HOST_PLACEHOLDER = "__EMBEDDED_SOCKET_DIR__"
EMBEDDED_DBNAME = "kpi_red"

# `kpi-red match` defaults, shared by the command line, `kpi-red cycle` and the benchmark
DEFAULT_BATCH_SIZE = 2000
DEFAULT_WRITERS = 2


class ConfigError(Exception):
    """A configuration problem the user can fix; shown as one line."""


@dataclass(frozen=True)
class Tables:
    """Qualified names of every table the matcher touches, as (schema, table) pairs."""

    leads: tuple[str, str] = ("cabinet", "leads")
    registry: tuple[str, str] = ("canon", "identity_registry")
    links: tuple[str, str] = ("canon", "identity_links")
    origin: tuple[str, str] = ("canon", "identity_origin")
    claims: tuple[str, str] = ("claims", "lead_claims")
    attempts: tuple[str, str] = ("kpi_red", "match_attempts")
    lead_source_table: str = "cabinet_leads"


@dataclass(frozen=True)
class Settings:
    """What the matcher needs from ``dbt_project.yml``."""

    project_dir: Path
    tables: Tables = field(default_factory=Tables)
    vars: dict[str, Any] = field(default_factory=dict)


def find_project_dir(start: Path | None = None) -> Path:
    """The dbt project: ``KPI_RED_PROJECT_DIR``, else the nearest ``dbt_project.yml`` up
    from the working directory, else the one this package was installed from."""
    env = os.environ.get("KPI_RED_PROJECT_DIR")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    return Path(__file__).resolve().parent.parent


def load_settings(project_dir: Path | None = None) -> Settings:
    project_dir = project_dir or find_project_dir()
    path = project_dir / "dbt_project.yml"
    try:
        project = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        project = {}
    project_vars: dict[str, Any] = project.get("vars") or {}

    def pair(name: str, default: tuple[str, str]) -> tuple[str, str]:
        return (
            str(project_vars.get(f"{name}_schema", default[0])),
            str(project_vars.get(f"{name}_table", default[1])),
        )

    defaults = Tables()
    tables = Tables(
        leads=pair("leads", defaults.leads),
        registry=pair("registry", defaults.registry),
        links=pair("links", defaults.links),
        origin=pair("origin", defaults.origin),
        claims=pair("claims", defaults.claims),
        attempts=pair("attempts", defaults.attempts),
        lead_source_table=str(project_vars.get("lead_source_table", defaults.lead_source_table)),
    )
    return Settings(project_dir=project_dir, tables=tables, vars=project_vars)


# --- the connection -------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """A libpq connection string and a description of it that is safe to print."""

    conninfo: str
    description: str
    is_embedded: bool = False


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


def _env_var(name: str, default: str | None = None) -> str:
    if name in os.environ:
        return os.environ[name]
    if default is not None:
        return default
    raise ConfigError(f"the dbt profile needs environment variable {name}, which is not set")


def read_profile(path: Path, target: str | None) -> tuple[str, dict[str, Any]]:
    """The chosen target of our profile in a ``profiles.yml``, with ``env_var()`` rendered."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.globals["env_var"] = _env_var
    env.filters["as_number"] = lambda value: int(value) if str(value).isdigit() else float(value)
    env.filters["as_text"] = str

    def render(value: Any) -> Any:
        if isinstance(value, str) and "{{" in value:
            return env.from_string(value).render()
        if isinstance(value, dict):
            return {key: render(item) for key, item in value.items()}
        return value

    try:
        profiles = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc.__class__.__name__}") from None
    profile = profiles.get(PROFILE_NAME)
    if not isinstance(profile, dict):
        raise ConfigError(f"{path} has no profile named {PROFILE_NAME!r}")
    chosen = target or os.environ.get("DBT_TARGET") or render(profile.get("target"))
    outputs = profile.get("outputs") or {}
    if chosen not in outputs:
        known = ", ".join(sorted(outputs)) or "none"
        raise ConfigError(f"profile {PROFILE_NAME!r} has no target {chosen!r} (targets: {known})")
    return str(chosen), render(outputs[chosen])


def conninfo_from_output(output: dict[str, Any]) -> str:
    from psycopg.conninfo import make_conninfo

    parts = {
        "host": output.get("host"),
        "port": output.get("port"),
        "user": output.get("user"),
        "password": output.get("password") or output.get("pass") or None,
        "dbname": output.get("dbname") or output.get("database"),
        "sslmode": output.get("sslmode"),
        "connect_timeout": output.get("connect_timeout", 10),
    }
    return make_conninfo(
        **{key: str(value) for key, value in parts.items() if value not in (None, "")}
    )


def redact(conninfo: str) -> str:
    """A connection string with its password (key=value or URI form) replaced by ***."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        parts = conninfo_to_dict(conninfo)
    except Exception:
        for pattern in _PASSWORD_PATTERNS:
            conninfo = pattern.sub(_mask_group, conninfo)
        return conninfo
    if "password" in parts:
        parts["password"] = "***"
    return make_conninfo(**{key: str(value) for key, value in parts.items()})


_PASSWORD_PATTERNS = (
    re.compile(r"://[^:/?#@]*:(.*)@"),  # URI userinfo, up to the last @
    re.compile(r"(?i)[?&]password=([^&#]*)"),  # URI query parameter
    re.compile(r"(?i)\bpassword\s*=\s*'((?:\\.|[^'])*)'?"),  # key='quoted value'
    re.compile(r"(?i)\bpassword\s*=\s*([^'\s]\S*)"),  # key=value
)


def _mask_group(match: re.Match[str]) -> str:
    """The match with its first group (the password) replaced by ***."""
    start, end = match.span(1)
    whole = match.group(0)
    return whole[: start - match.start()] + "***" + whole[end - match.start() :]


def password_candidates(conninfo: str) -> list[str]:
    """Whatever looks like a password in a connection string, even one libpq cannot
    parse (its error messages may quote any part of it), raw and percent-decoded."""
    from urllib.parse import unquote

    found = {
        text
        for pattern in _PASSWORD_PATTERNS
        for match in pattern.finditer(conninfo)
        for text in (match.group(1), unquote(match.group(1)))
        if text
    }
    return sorted(found, key=len, reverse=True)


def resolve_connection(
    *,
    settings: Settings,
    dsn: str | None = None,
    profiles_dir: str | None = None,
    target: str | None = None,
) -> Connection:
    """Pick the database: ``--dsn``/``KPI_RED_DSN``, else the dbt profile, else embedded."""
    dsn = dsn or os.environ.get("KPI_RED_DSN")
    if dsn:
        return Connection(conninfo=dsn, description=f"dsn {redact(dsn)}")

    directory = profiles_dir_for(settings.project_dir, profiles_dir)
    path = directory / "profiles.yml"
    if path.is_file():
        chosen, output = read_profile(path, target)
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

    from matcher import server

    socket_dir = server.ensure_running(embedded_data_dir(settings.project_dir), dbname=dbname)
    return Connection(
        conninfo=server.conninfo(socket_dir, dbname),
        description=f"embedded PostgreSQL at {socket_dir} (database {dbname})",
        is_embedded=True,
    )


def _is_embedded_host(settings: Settings, output: dict[str, Any]) -> bool:
    host = str(output.get("host", ""))
    return bool(host) and Path(host).resolve() == embedded_data_dir(settings.project_dir)
