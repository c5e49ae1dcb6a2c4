"""What the tables are called, the roles, and the vars behind them.

Table names and every other setting come from the vars dbt resolves for this project's
models (``matcher.project``), ``--vars`` included. A leaf: it imports nothing of ours but
``matcher.project`` (the dbt project's files, itself a leaf).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matcher import project as dbt_project
from matcher.project import PACKAGE_NAME, ProjectError

PROFILE_NAME = PACKAGE_NAME
"""The profile name when the dbt project names none (its own ``profile:`` wins)."""

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
