"""`kpi-red cycle`: one scheduled step, ``dbt build`` -> match -> ``dbt build``.

Guarded by a session advisory lock held on a dedicated connection, so two cycles never
overlap: the second fails at once with CycleBusyError (exit code 75 at the CLI). dbt runs
in-process; with a DSN it gets a temporary profile whose password is read from an
environment variable, never written to a file.
"""

from __future__ import annotations

import getpass
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict

from matcher import db
from matcher.config import PROFILE_NAME, Settings
from matcher.report import RunSummary
from matcher.run import MatchOptions, run_match


class CycleBusyError(Exception):
    """Another `kpi-red cycle` holds the lock on this database."""


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
def dbt_profile_from_dsn(conninfo: str) -> Iterator[DbtTarget]:
    """A temporary profiles.yml for the DSN; the password only in ``DBT_ENV_SECRET_*``."""
    try:
        parts = conninfo_to_dict(conninfo)
        port = int(parts.get("port") or os.environ.get("PGPORT") or 5432)
    except (ProgrammingError, ValueError):
        # the same one-line error, without secrets, that a connection attempt gives
        with db.connect(conninfo):
            pass
        raise db.DatabaseError("invalid connection string: the port must be a number") from None
    values = {
        "host": parts.get("host") or os.environ.get("PGHOST") or "localhost",
        "port": port,
        "user": parts.get("user") or os.environ.get("PGUSER") or getpass.getuser(),
        "dbname": parts.get("dbname") or os.environ.get("PGDATABASE") or "postgres",
        "schema": os.environ.get("KPI_RED_SCHEMA", "analytics"),
        "sslmode": parts.get("sslmode") or os.environ.get("PGSSLMODE") or "prefer",
    }
    text = PROFILE_TEMPLATE.format(
        profile=PROFILE_NAME,
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


@dataclass
class CycleReport:
    steps: list[tuple[str, float]]
    summary: RunSummary | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "steps": [{"step": name, "seconds": round(seconds, 3)} for name, seconds in self.steps],
            "match": self.summary.to_json() if self.summary else None,
        }


def run_cycle(
    conninfo: str,
    *,
    settings: Settings,
    dbt_target: DbtTarget,
    options: MatchOptions,
    full_refresh: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> CycleReport:
    """``init`` → ``dbt build`` → match → ``dbt build`` under a session advisory lock.

    Raises CycleBusyError at once when another cycle holds the lock; the lock is released
    at the end, or by the server when this process dies.
    """
    from matcher import dbt

    report = CycleReport(steps=[])

    def step(name: str, work: Callable[[], object]) -> object:
        if on_step is not None:
            on_step(name)
        clock = time.perf_counter()
        result = work()
        report.steps.append((name, time.perf_counter() - clock))
        return result

    def build(*extra: str) -> object:
        return dbt.run(
            ["build", *extra],
            settings=settings,
            profiles_dir=dbt_target.profiles_dir,
            target=dbt_target.target,
        )

    with db.connect(conninfo, autocommit=True) as guard:
        if not db.try_cycle_lock(guard):
            raise CycleBusyError("another kpi-red cycle is running on this database")
        try:
            step("init", lambda: db.init_schema(guard, settings.tables))
            step("dbt build", lambda: build(*(["--full-refresh"] if full_refresh else [])))
            report.summary = step(  # type: ignore[assignment]
                "match", lambda: run_match(conninfo, settings=settings, options=options)
            )
            step("dbt build", build)
        finally:
            db.release_cycle_lock(guard)
    return report
