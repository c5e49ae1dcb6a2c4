"""One configuration, read as dbt reads it: the project (standalone or a host's package),
its profile, its vars in dbt's order, ``--vars``; bad values are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PROJECT_DIR
from psycopg.conninfo import conninfo_to_dict

from matcher import agreement
from matcher.cli import main
from matcher.connection import conninfo_from_output
from matcher.project import PACKAGE_NAME
from matcher.settings import ConfigError, Tables, load_settings

HOST = """
name: analytics_host
config-version: 2
profile: "{{ env_var('HOST_PROFILE', 'analytics') }}"
vars:
  attempts_table: top_level_attempts
  metrics_lookback_days: 9
  kpi_red_recovery:
    attempts_schema: "{{ env_var('KPI_RED_TEST_ATTEMPTS_SCHEMA', 'kpi_red_ops') }}"
    matcher_linked_by: host-matcher
    metrics_lookback_days: 7
"""


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host project with this one installed as a package (as `dbt deps` leaves it)."""
    (tmp_path / "dbt_project.yml").write_text(HOST)
    (tmp_path / "dbt_packages").mkdir()
    (tmp_path / "dbt_packages" / PACKAGE_NAME).symlink_to(PROJECT_DIR)
    return tmp_path


def test_standalone_the_project_is_this_one() -> None:
    settings = load_settings(PROJECT_DIR)
    assert not settings.is_package
    assert settings.profile_name == "kpi_red_recovery"
    assert settings.tables == Tables()
    assert settings.vars["metrics_time_zone"] == "America/Lima"


def test_package_vars_resolve_in_dbts_order(host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBT_PROFILE", raising=False)
    settings = load_settings(host)
    assert settings.is_package and settings.package_dir == PROJECT_DIR
    assert settings.profile_name == "analytics"  # the host's
    # the package's defaults < the host's top-level vars < the host's package-scoped ones
    assert settings.tables.attempts == ("kpi_red_ops", "top_level_attempts")
    assert settings.tables.linked_by == "host-matcher"
    assert settings.vars["metrics_lookback_days"] == 7
    assert settings.vars["metrics_time_zone"] == "America/Lima"
    # --vars win over everything
    given = load_settings(host, cli_vars={"attempts_schema": "cli", "junk_emails": []})
    assert given.tables.attempts == ("cli", "top_level_attempts")
    assert given.cli_vars == {"attempts_schema": "cli", "junk_emails": []}


def test_env_var_in_project_files_is_rendered(host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPI_RED_TEST_ATTEMPTS_SCHEMA", "from_env")
    monkeypatch.setenv("HOST_PROFILE", "warehouse")
    settings = load_settings(host)
    assert settings.tables.attempts[0] == "from_env"
    assert settings.profile_name == "warehouse"
    monkeypatch.setenv("DBT_PROFILE", "override")  # as dbt's --profile
    assert load_settings(host).profile_name == "override"


def test_a_host_without_the_package_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "dbt_project.yml").write_text(HOST)
    result = CliRunner().invoke(
        main, ["grants", "--for", "project", "--project-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {tmp_path / 'dbt_project.yml'} is project 'analytics_host', which does not"
        " install kpi_red_recovery (no dbt_packages/kpi_red_recovery: add it to packages.yml"
        " and run `dbt deps`)"
    ]


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        (
            {"PGPORT": "abc"},
            ["--target", "prod"],
            "Error: {profiles}: {{{{ env_var('PGPORT', '5432') | as_number }}}}: 'abc' is not"
            " a number (dbt's as_number)",
        ),
        ({}, ["--target", "nope"], "Error: profile 'kpi_red_recovery' has no target 'nope'"),
        ({}, ["--vars", "{a: [1"], "Error: --vars is not valid YAML: '{{a: [1'"),
        ({}, ["--vars", "[1]"], "Error: --vars must be a mapping"),
    ],
)
def test_bad_environment_and_options_are_one_line(
    tmp_path: Path, env: dict[str, str], args: list[str], expected: str
) -> None:
    (tmp_path / "profiles.yml").write_text((PROJECT_DIR / "profiles.example.yml").read_text())
    environment = {
        "PGHOST": "127.0.0.1",
        "PGUSER": "u",
        "PGDATABASE": "d",
        "DBT_ENV_SECRET_PGPASSWORD": "p",
        "KPI_RED_DSN": None,
        **env,
    }
    result = CliRunner().invoke(
        main,
        ["metrics", "--profiles-dir", str(tmp_path), "--project-dir", str(PROJECT_DIR), *args],
        env=environment,  # type: ignore[arg-type]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        expected.format(profiles=tmp_path / "profiles.yml")
    ), lines


def test_a_dsn_with_a_bad_port_is_one_line() -> None:
    env = {"KPI_RED_DSN": "host=127.0.0.1 dbname=x user=u", "PGPORT": "abc"}
    for command in (["match"], ["cycle"], ["metrics"]):
        result = CliRunner().invoke(main, command, env=env)
        assert result.exit_code == 1
        assert result.output.strip().splitlines() == [
            'Error: cannot connect to PostgreSQL: connection is bad: invalid integer value "abc"'
            ' for connection option "port"'
        ], command


def test_the_profiles_role_is_the_matchers_role_too() -> None:
    conninfo = conninfo_from_output(
        {"host": "db", "port": 5432, "user": "alice", "dbname": "w", "role": "kpi red dbt"}
    )
    assert conninfo_to_dict(conninfo)["options"] == "-c role=kpi\\ red\\ dbt"
    with pytest.raises(ConfigError, match="port must be a number"):
        conninfo_from_output({"host": "db", "port": "abc"})


def test_differences_from_the_build_name_each_setting() -> None:
    settings = load_settings(PROJECT_DIR)
    built = dict(settings.vars)
    assert agreement.differences(settings, built) == []
    built.update(attempts_schema="kpi_red_ops", matcher_linked_by="bot", phone_country_code="57")
    assert agreement.differences(settings, built) == [
        "the attempts log: dbt reads kpi_red_ops.match_attempts, kpi-red would use"
        " kpi_red.match_attempts",
        "matcher_linked_by: dbt uses 'bot', kpi-red 'kpi-red'",
        "phone_country_code: dbt uses '57', kpi-red '51'",
    ]
    with pytest.raises(ConfigError, match="not the one the last dbt build used"):
        agreement.check(settings, built)
    agreement.check(settings, None)  # nothing built yet: nothing to compare
