"""The dbt project dbt runs, this package inside it, and its vars as dbt resolves them.

Standalone, the dbt project is this one (``name: kpi_red_recovery``). As a package, it is
a host project that installs this one (``packages.yml``, ``dbt deps``): the profile is the
host's, and this package's models see, from the lowest priority to the highest, the vars
of this project's ``dbt_project.yml``, the host's top-level vars, the host's
package-scoped ones (``vars: {kpi_red_recovery: {...}}``) and ``--vars`` (dbt's
``ModelConfiguredVar``). ``env_var()`` in those files is rendered as dbt renders it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

PACKAGE_NAME = "kpi_red_recovery"
"""This project's dbt name: the key of its package-scoped vars and its `package:` selector."""


class ProjectError(Exception):
    """The dbt project cannot be found or read; shown as one line."""


@dataclass(frozen=True)
class DbtProject:
    """Where dbt runs (``root_dir``) and where this package's own project is."""

    root_dir: Path
    package_dir: Path
    profile_name: str
    root_vars: Mapping[str, Any] = field(default_factory=dict)
    package_vars: Mapping[str, Any] = field(default_factory=dict)
    found: bool = True
    """False when no dbt project was found: the vars are then empty (dbt's defaults are
    unknown), and ``kpi-red`` checks what it uses against the last build's."""

    @property
    def is_package(self) -> bool:
        return self.root_dir != self.package_dir


def find_project_dir(start: Path | None = None) -> Path | None:
    """``KPI_RED_PROJECT_DIR``, else the nearest ``dbt_project.yml`` up from the working
    directory, else the one this package was installed from (an editable install)."""
    env = os.environ.get("KPI_RED_PROJECT_DIR")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents, Path(__file__).resolve().parent.parent):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    return None


def env_var(name: str, default: str | None = None) -> str:
    """dbt's ``env_var()``: the variable, else the default, else an error naming it."""
    if name in os.environ:
        return os.environ[name]
    if default is not None:
        return default
    raise ProjectError(f"environment variable {name} is not set (dbt's env_var() needs it)")


def as_number(value: Any) -> int | float:
    """dbt's ``as_number`` filter, with a one-line error for text that is no number."""
    text = str(value).strip()
    try:
        return int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:
        raise ProjectError(f"{text!r} is not a number (dbt's as_number)") from None


def renderer(cli_vars: Mapping[str, Any] | None = None) -> jinja2.Environment:
    """A Jinja environment with what dbt offers its YAML files: ``env_var``, ``var``
    (``--vars`` only), ``as_number``, ``as_text``, ``as_bool``."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.globals["env_var"] = env_var
    given = dict(cli_vars or {})
    environment.globals["var"] = lambda name, default=None: given.get(name, default)
    environment.filters["as_number"] = as_number
    environment.filters["as_text"] = str
    environment.filters["as_bool"] = lambda value: str(value).strip().lower() == "true"
    return environment


def render(value: Any, environment: jinja2.Environment) -> Any:
    """Every ``{{ ... }}`` string in ``value`` (dicts and lists walked) rendered."""
    if isinstance(value, str) and "{{" in value:
        try:
            return environment.from_string(value).render()
        except (jinja2.TemplateError, ProjectError) as exc:
            raise ProjectError(f"{value.strip()}: {exc}") from None
    if isinstance(value, dict):
        return {key: render(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, environment) for item in value]
    return value


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path} is not valid YAML: {exc.__class__.__name__}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ProjectError(f"{path} is not a YAML mapping")
    return loaded


def parse_cli_vars(text: str | None) -> dict[str, Any]:
    """``--vars`` as dbt reads it: a YAML (or JSON) mapping."""
    if not text:
        return {}
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ProjectError(f"--vars is not valid YAML: {text!r}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ProjectError(f"--vars must be a mapping like '{{as_of: 2026-11-20}}', not {text!r}")
    return loaded


def load_project(
    start: Path | None = None, *, cli_vars: Mapping[str, Any] | None = None
) -> DbtProject:
    """The dbt project at ``start`` (or found as ``find_project_dir`` finds it)."""
    root_dir = start.resolve() if start else find_project_dir()
    environment = renderer(cli_vars)
    if root_dir is None or not (root_dir / "dbt_project.yml").is_file():
        return DbtProject(
            root_dir=root_dir or Path.cwd(),
            package_dir=root_dir or Path.cwd(),
            profile_name=os.environ.get("DBT_PROFILE") or PACKAGE_NAME,
            found=False,
        )
    root = read_yaml(root_dir / "dbt_project.yml")
    name = render(root.get("name"), environment)
    profile_name = os.environ.get("DBT_PROFILE") or str(
        render(root.get("profile") or name or PACKAGE_NAME, environment)
    )
    root_vars = render(root.get("vars") or {}, environment)
    if name == PACKAGE_NAME:
        return DbtProject(
            root_dir=root_dir,
            package_dir=root_dir,
            profile_name=profile_name,
            root_vars=root_vars,
            package_vars=root_vars,
        )
    install_path = str(render(root.get("packages-install-path") or "dbt_packages", environment))
    package_dir = (root_dir / install_path / PACKAGE_NAME).resolve()
    package = read_yaml(package_dir / "dbt_project.yml")
    if package.get("name") != PACKAGE_NAME:
        raise ProjectError(
            f"{root_dir / 'dbt_project.yml'} is project {name!r}, which does not install"
            f" {PACKAGE_NAME} (no {install_path}/{PACKAGE_NAME}: add it to packages.yml"
            " and run `dbt deps`)"
        )
    return DbtProject(
        root_dir=root_dir,
        package_dir=package_dir,
        profile_name=profile_name,
        root_vars=root_vars,
        package_vars=render(package.get("vars") or {}, environment),
    )


def resolve_vars(project: DbtProject, cli_vars: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The vars this package's models see, as dbt resolves them: each project's
    top-level vars, then its ``kpi_red_recovery:`` ones (the package's own project first,
    then the host's), then ``--vars``; the latest wins."""
    resolved: dict[str, Any] = {}
    projects = (
        [project.package_vars, project.root_vars] if project.is_package else [project.root_vars]
    )
    for project_vars in projects:
        resolved.update(project_vars)
        scoped = project_vars.get(PACKAGE_NAME)
        if isinstance(scoped, Mapping):
            resolved.update(scoped)
    resolved.pop(PACKAGE_NAME, None)
    resolved.update(cli_vars or {})
    return resolved
