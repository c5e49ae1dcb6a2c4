"""PostgreSQL servers for the production suite (``test_production.py``).

- ``embedded``: the suite's embedded server (unix socket; it trusts its socket, so role
  passwords are not checked, but ownership and privileges are).
- ``debian``: the oldest supported PostgreSQL from Debian's ``postgresql`` package
  (``/usr/lib/postgresql/<version>/bin``), a fresh cluster in a temporary directory on a
  loopback port with password (scram-sha-256) authentication, stopped and removed after the
  session. Without those binaries the tests skip, naming what to install; in CI (``CI`` set)
  they fail instead, so the version docs/production.md promises is always checked there.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

OLDEST_SUPPORTED = 15
SUPERUSER = "postgres"
PASSWORD = "Prod-S3cret pw"  # every role of the suite (a space: quoting is tested too)
DEBIAN_BINARIES = Path("/usr/lib/postgresql")


@dataclass(frozen=True)
class Server:
    """A running server and how to reach it as any role."""

    name: str
    host: str
    port: int
    version: str
    checks_passwords: bool

    def conninfo(self, *, dbname: str, user: str = SUPERUSER) -> str:
        return make_conninfo(
            host=self.host,
            port=str(self.port),
            user=user,
            password=PASSWORD,
            dbname=dbname,
            connect_timeout="10",
        )

    def connect(self, *, dbname: str, user: str = SUPERUSER) -> psycopg.Connection:
        return psycopg.connect(self.conninfo(dbname=dbname, user=user), autocommit=True)


def embedded(socket_dir: Path) -> Server:
    with psycopg.connect(f"host={socket_dir} user={SUPERUSER} dbname=postgres") as conn:
        version = str(conn.execute("show server_version").fetchone()[0])  # type: ignore[index]
    return Server("embedded", str(socket_dir), 5432, version, checks_passwords=False)


def debian_bin_dir() -> Path | None:
    """The bin directory of the oldest supported PostgreSQL installed from Debian."""
    found = []
    for initdb in DEBIAN_BINARIES.glob("*/bin/initdb"):
        match = re.fullmatch(r"\d+", initdb.parent.parent.name)
        if match and int(match.group()) >= OLDEST_SUPPORTED:
            found.append((int(match.group()), initdb.parent))
    return min(found)[1] if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def debian_server(bin_dir: Path) -> Iterator[Server]:
    """A fresh cluster of ``bin_dir``'s PostgreSQL on 127.0.0.1, removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="kpi-red-postgresql-"))
    home.chmod(0o755)
    run_as = _system_user()
    data, log, password_file = home / "data", home / "server.log", home / "password"
    password_file.write_text(PASSWORD + "\n")
    if run_as is not None:
        for path in (home, password_file):
            os.chown(path, run_as.pw_uid, run_as.pw_gid)
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run(
            args,
            check=True,
            capture_output=True,
            user=run_as.pw_uid if run_as else None,
            group=run_as.pw_gid if run_as else None,
            cwd=home,
        )

    try:
        run(
            str(bin_dir / "initdb"),
            "--pgdata", str(data),
            "--username", SUPERUSER,
            "--pwfile", str(password_file),
            "--auth-local", "scram-sha-256",
            "--auth-host", "scram-sha-256",
            "--encoding", "UTF8",
            "--locale", "C",
        )  # fmt: skip
        run(
            str(bin_dir / "pg_ctl"),
            "--pgdata", str(data),
            "--log", str(log),
            "--wait",
            "--options", f"-c listen_addresses=127.0.0.1 -c port={port} -k {home}",
            "start",
        )  # fmt: skip
        server = Server("debian", "127.0.0.1", port, "", checks_passwords=True)
        with server.connect(dbname="postgres") as conn:
            version = str(conn.execute("show server_version").fetchone()[0])  # type: ignore[index]
        yield Server("debian", "127.0.0.1", port, version, checks_passwords=True)
    finally:
        if (data / "postmaster.pid").exists():
            run(str(bin_dir / "pg_ctl"), "--pgdata", str(data), "--mode", "fast", "stop")
        shutil.rmtree(home, ignore_errors=True)


def _system_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, run it as ``postgres`` (Debian's)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and no postgres or nobody user to run PostgreSQL as")


def create_roles(server: Server, *names: str, login: bool = True) -> None:
    with server.connect(dbname="postgres") as conn:
        for name in names:
            conn.execute(
                sql.SQL("create role {} {} password {}").format(
                    sql.Identifier(name),
                    sql.SQL("login" if login else "nologin"),
                    sql.Literal(PASSWORD),
                )
            )


def drop_database_and_roles(server: Server, dbname: str, *names: str) -> None:
    """The database (and with it all the roles own or were granted in it), then them."""
    with server.connect(dbname="postgres") as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
        )
        for name in names:
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))
