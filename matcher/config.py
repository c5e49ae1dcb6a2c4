"""Where the database is, what the tables are called, and the vars behind them.

One configuration: the dbt project and its profile. The matcher reads the same profile
and target as dbt (``--profiles-dir``, ``--target``), or a DSN from ``--dsn`` /
``KPI_RED_DSN``; with no configuration at all it uses the embedded PostgreSQL under
``.data/``. Table names and every other setting come from the vars dbt resolves for this
project's models (``matcher.project``), ``--vars`` included.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matcher import project as dbt_project
from matcher.project import PACKAGE_NAME, ProjectError

PROFILE_NAME = PACKAGE_NAME
"""The profile name when the dbt project names none (its own ``profile:`` wins)."""
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
    """Qualified names of every table the matcher touches, as (schema, table) pairs, and
    the values it writes into ``identity_links`` (``source_table``, ``linked_by``)."""

    leads: tuple[str, str] = ("cabinet", "leads")
    registry: tuple[str, str] = ("canon", "identity_registry")
    links: tuple[str, str] = ("canon", "identity_links")
    origin: tuple[str, str] = ("canon", "identity_origin")
    claims: tuple[str, str] = ("claims", "lead_claims")
    attempts: tuple[str, str] = ("kpi_red", "match_attempts")
    lead_source_table: str = "cabinet_leads"
    linked_by: str = "kpi-red"
    reviews: tuple[str, str] = ("kpi_red", "review_decisions")
    """The reviewers' decisions (append-only; ``kpi-red review``, ``kpi-red unlink``)."""
    removals: tuple[str, str] = ("kpi_red", "link_removals")
    """The links ``kpi-red unlink`` removed (append-only)."""
    review_linked_by: str = "kpi-red review"
    """``identity_links.linked_by`` of the links a review made."""


@dataclass(frozen=True)
class Roles:
    """The three production roles (vars ``dbt_role``, ``matcher_role``, ``reader_role``)."""

    dbt: str = "kpi_red_dbt"
    matcher: str = "kpi_red_matcher"
    reader: str = "kpi_red_reader"
    reviewer: str = "kpi_red_reviewer"
    """The role of ``kpi-red review`` and ``kpi-red unlink`` (var ``reviewer_role``)."""
    dbt_is_set: bool = False
    """Whether var ``dbt_role`` is set (dbt then builds every model as that role)."""


@dataclass(frozen=True)
class Settings:
    """What the matcher needs from the dbt project: the same vars dbt uses."""

    project_dir: Path
    """The dbt project dbt runs: this one, or a host project that installs it."""
    tables: Tables = field(default_factory=Tables)
    vars: dict[str, Any] = field(default_factory=dict)
    """The vars as dbt resolves them for this project's models, ``--vars`` included."""
    cli_vars: dict[str, Any] = field(default_factory=dict)
    """``--vars``: passed on to every dbt command ``kpi-red`` runs."""
    package_dir: Path | None = None
    """This project's own directory (``project_dir`` itself unless it is a package)."""
    profile_name: str = PROFILE_NAME
    project_found: bool = True

    @property
    def is_package(self) -> bool:
        return self.package_dir is not None and self.package_dir != self.project_dir

    @property
    def roles(self) -> Roles:
        dbt = self.vars.get("dbt_role")
        return Roles(
            dbt=str(dbt) if dbt not in (None, "") else Roles.dbt,
            matcher=str(self.vars.get("matcher_role") or Roles.matcher),
            reader=str(self.vars.get("reader_role") or Roles.reader),
            reviewer=str(self.vars.get("reviewer_role") or Roles.reviewer),
            dbt_is_set=dbt not in (None, ""),
        )


def tables_from_vars(project_vars: Mapping[str, Any]) -> Tables:
    """The tables and written values named by the vars (defaults where a var is unset)."""
    defaults = Tables()

    def pair(name: str, default: tuple[str, str]) -> tuple[str, str]:
        schema = project_vars.get(f"{name}_schema", default[0])
        table = project_vars.get(f"{name}_table", default[1])
        for var, value in ((f"{name}_schema", schema), (f"{name}_table", table)):
            if value is None or str(value) == "":
                raise ConfigError(f"var {var} is empty: it names a schema or table")
        return (str(schema), str(table))

    return Tables(
        leads=pair("leads", defaults.leads),
        registry=pair("registry", defaults.registry),
        links=pair("links", defaults.links),
        origin=pair("origin", defaults.origin),
        claims=pair("claims", defaults.claims),
        attempts=pair("attempts", defaults.attempts),
        lead_source_table=str(project_vars.get("lead_source_table", defaults.lead_source_table)),
        linked_by=str(project_vars.get("matcher_linked_by", defaults.linked_by)),
        reviews=pair("review_decisions", defaults.reviews),
        removals=pair("link_removals", defaults.removals),
        review_linked_by=str(project_vars.get("review_linked_by", defaults.review_linked_by)),
    )


def load_settings(
    project_dir: Path | None = None, *, cli_vars: Mapping[str, Any] | None = None
) -> Settings:
    """The settings of the dbt project at ``project_dir`` (else found from the working
    directory), with ``cli_vars`` (``--vars``) on top, as dbt would resolve them."""
    given = dict(cli_vars or {})
    try:
        found = dbt_project.load_project(project_dir, cli_vars=given)
        project_vars = dbt_project.resolve_vars(found, given)
    except ProjectError as exc:
        raise ConfigError(str(exc)) from None
    return Settings(
        project_dir=found.root_dir,
        tables=tables_from_vars(project_vars),
        vars=project_vars,
        cli_vars=given,
        package_dir=found.package_dir,
        profile_name=found.profile_name,
        project_found=found.found,
    )


def find_project_dir(start: Path | None = None) -> Path:
    """The dbt project ``kpi-red`` uses (see ``matcher.project.find_project_dir``)."""
    return dbt_project.find_project_dir(start) or (start or Path.cwd()).resolve()


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
    from psycopg.conninfo import make_conninfo

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
