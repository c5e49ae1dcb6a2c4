"""Throwaway benchmark databases on the embedded server, and dbt run as a child process."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.measure import ChildResult, run_child
from matcher import embedded
from matcher.connection import embedded_data_dir
from matcher.settings import load_settings
from matcher.store import admin as store_admin
from matcher.store import base as store_base

PROJECT_DIR = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent

PROFILE_TEMPLATE = """
kpi_red_recovery:
  target: bench
  outputs:
    bench:
      type: postgres
      host: "{host}"
      port: 5432
      user: postgres
      password: ""
      dbname: "{dbname}"
      schema: analytics
      threads: {threads}
"""


def socket_dir() -> Path:
    """The running embedded server's socket directory (started if it is not running)."""
    data_dir = embedded_data_dir(PROJECT_DIR)
    current = embedded.status(data_dir)
    if current.is_running and current.socket_dir is not None:
        return current.socket_dir
    return embedded.start(data_dir)


@dataclass(frozen=True)
class BenchDatabase:
    """One database of the benchmark and the dbt profile pointing at it."""

    name: str
    socket: Path
    home: Path

    @property
    def conninfo(self) -> str:
        return embedded.conninfo(self.socket, self.name)

    @property
    def profiles_dir(self) -> Path:
        return self.home / "profiles"

    @property
    def target_path(self) -> Path:
        return self.home / "target"

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(self.conninfo, application_name="kpi-red-bench", **kwargs)

    def scalar(self, statement: str, params: Any = None) -> Any:
        with self.connect() as conn:
            row = conn.execute(statement, params).fetchone()
            return row[0] if row else None

    def execute(self, statement: str, params: Any = None, *, autocommit: bool = False) -> None:
        with self.connect(autocommit=autocommit) as conn:
            conn.execute(statement, params)

    def cli_env(self) -> dict[str, str]:
        """The environment of a ``kpi-red`` child on this database. dbt's files (the
        partial-parse state among them) go under ``home``, one directory per database as
        one deployment has: with several sizes, cycles alternate between databases, and
        in the project's ``target/`` each would find the other's profile and parse the
        whole project again (~2 s)."""
        return {
            "KPI_RED_DSN": self.conninfo,
            "KPI_RED_PROJECT_DIR": str(PROJECT_DIR),
            "DBT_TARGET_PATH": str(self.home / "cycle-target"),
            "DBT_LOG_PATH": str(self.home / "cycle-target" / "logs"),
        }

    def write_profile(self, *, threads: int = 4) -> None:
        self.profiles_dir.mkdir(parents=True, exist_ok=True)
        (self.profiles_dir / "profiles.yml").write_text(
            PROFILE_TEMPLATE.format(host=self.socket, dbname=self.name, threads=threads)
        )

    def dbt(self, *args: str) -> DbtRun:
        """``dbt <args>`` as a child process (its own memory), with its run_results.

        ``build`` excludes unit tests, as a production schedule does: they test the
        models' logic on fixed rows, not the data, and cost the same at every size.
        """
        self.write_profile()
        if args and args[0] == "build":
            args = (*args, "--exclude-resource-type", "unit_test")
        argv = [
            str(BIN_DIR / "dbt"),
            "--no-use-colors",
            *args,
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(self.profiles_dir),
            "--target",
            "bench",
            "--target-path",
            str(self.target_path),
            "--log-path",
            str(self.target_path / "logs"),
        ]
        child = run_child(argv, cwd=PROJECT_DIR, env={"DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
        child.check()
        return DbtRun(child=child, nodes=_node_timings(self.target_path / "run_results.json"))


@dataclass(frozen=True)
class DbtRun:
    child: ChildResult
    nodes: list[dict[str, Any]]

    @property
    def node_seconds(self) -> float:
        return sum(node["seconds"] for node in self.nodes)

    def slowest(self, count: int = 6) -> list[dict[str, Any]]:
        return sorted(self.nodes, key=lambda node: -node["seconds"])[:count]


def _node_timings(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    results = json.loads(path.read_text()).get("results", [])
    return [
        {
            "node": result["unique_id"].split(".", 2)[-1],
            "kind": result["unique_id"].split(".", 1)[0],
            "status": result.get("status"),
            "seconds": round(float(result.get("execution_time") or 0.0), 3),
        }
        for result in results
    ]


def create(name: str, *, home: Path, init: bool = True) -> BenchDatabase:
    socket = socket_dir()
    embedded.drop_database(socket, name)
    embedded.create_database(socket, name)
    database = BenchDatabase(name=name, socket=socket, home=home)
    if init:
        with store_base.connect(database.conninfo) as conn:
            store_admin.init_schema(conn, load_settings(PROJECT_DIR).tables)
    return database


def clone(source: BenchDatabase, name: str, *, home: Path | None = None) -> BenchDatabase:
    """An identical copy (``create database ... template``): the same state, other files.

    ``file_copy`` copies the files after a checkpoint; much faster than the default
    ``wal_log`` strategy for a database of hundreds of megabytes.
    """
    with psycopg.connect(embedded.conninfo(source.socket, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        conn.execute(
            sql.SQL("create database {} template {} strategy file_copy").format(
                sql.Identifier(name), sql.Identifier(source.name)
            )
        )
    home = home or source.home.parent / name
    home.mkdir(parents=True, exist_ok=True)
    return BenchDatabase(name=name, socket=source.socket, home=home)


def drop(database: BenchDatabase) -> None:
    embedded.drop_database(database.socket, database.name)


def database_size_mb(database: BenchDatabase) -> float:
    return float(database.scalar("select pg_database_size(current_database())")) / 2**20


def reaped_server_cpu_s() -> float | None:
    """User + system CPU seconds of every embedded-server process that has exited so far
    (the postmaster's reaped children: sessions, their parallel workers, autovacuum
    workers), from ``/proc``; None where there is none (not Linux) or no server."""
    try:
        pid_file = embedded_data_dir(PROJECT_DIR) / "postmaster.pid"
        postmaster = int(pid_file.read_text().split()[0])
        # the fields after the command name, which may hold spaces: state is field 3
        fields = Path(f"/proc/{postmaster}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class ServerCpu:
    seconds: float | None = None
    """None until the block ends, and when it cannot be measured."""


SESSIONS = """
select coalesce(array_agg(pid), '{}') from pg_stat_activity
where
    datname = %s
    and backend_type in ('client backend', 'parallel worker')
    and pid <> pg_backend_pid()
"""


@contextmanager
def server_cpu(database: BenchDatabase, *, wait_s: float = 10.0) -> Iterator[ServerCpu]:
    """The server's CPU for what the block runs on ``database``: what its sessions (and
    their parallel workers) spent, counted once they have exited, so each must end within
    the block (a child process's with the child, a connection's when closed). Sessions
    open before the block are not waited for, nor counted unless they end in it;
    autovacuum workers that end meanwhile count (the benchmark vacuums first, so few run).
    None when a session of the block is still open ``wait_s`` after it, or without
    ``/proc``. (``pg_stat_statements`` would need a preloaded library.)"""
    measured = ServerCpu()
    before = reaped_server_cpu_s()
    admin = embedded.conninfo(database.socket, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        (already,) = conn.execute(SESSIONS, [database.name]).fetchone() or ([],)
    yield measured
    if before is None:
        return
    with psycopg.connect(admin, autocommit=True) as conn:
        deadline = time.monotonic() + wait_s
        while True:
            (open_now,) = conn.execute(SESSIONS, [database.name]).fetchone() or ([],)
            if not set(open_now) - set(already):
                break
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
    time.sleep(0.05)  # the postmaster reaps an exited session at once; give it a moment
    after = reaped_server_cpu_s()
    measured.seconds = None if after is None else after - before


def bench_name(size: str) -> str:
    return f"kpi_red_bench_{size}_{os.getpid()}"
