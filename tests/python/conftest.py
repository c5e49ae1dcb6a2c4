"""Fixtures: a real PostgreSQL (the embedded server) and a throwaway database per need.

Every test database is created fresh and dropped afterwards, so suites running at the
same time on one server never see each other's rows. dbt runs in-process against a
generated profile and writes its artifacts to a temporary target path.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import pytest

from matcher import dbt, embedded
from matcher.connection import embedded_data_dir
from matcher.settings import Settings, load_settings
from matcher.store import admin as store_admin
from matcher.store import base as store_base

PROJECT_DIR = Path(__file__).resolve().parents[2]


class PartialIndex(NamedTuple):
    name: str
    """Schema-qualified and quoted as needed (``regclass``): usable as is in SQL."""
    definition: str


@dataclass(frozen=True)
class Database:
    """A throwaway database and everything needed to point dbt and the CLI at it."""

    name: str
    conninfo: str
    profiles_dir: Path
    target_path: Path
    settings: Settings

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(self.conninfo, **kwargs)

    def query(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            return conn.execute(statement, params).fetchall()

    def partial_indexes(self, table: str, predicate: str) -> list[PartialIndex]:
        """``table``'s indexes whose predicate is ``predicate`` (as PostgreSQL deparses it,
        e.g. ``(left_at IS NULL)``): each one's name and definition."""
        return [
            PartialIndex(name, definition)
            for name, definition in self.query(
                "select indexrelid::regclass::text, pg_get_indexdef(indexrelid) from pg_index"
                " where indrelid = %s::regclass and pg_get_expr(indpred, indrelid) = %s",
                (table, predicate),
            )
        ]

    def scalar(self, statement: str, params: Any = None) -> Any:
        rows = self.query(statement, params)
        return rows[0][0] if rows else None

    def execute(self, statement: str, params: Any = None) -> None:
        with self.connect() as conn:
            conn.execute(statement, params)

    def wrong_links(self) -> list[tuple[Any, ...]]:
        """kpi-red links to someone other than the demo's ground truth says (must be none)."""
        return self.query(
            """
            select links.source_pk, links.match_rule, links.person_key, truth.person_key
            from canon.identity_links as links
            inner join kpi_red_demo.lead_truth as truth
                on truth.lead_id = links.source_pk
            where links.linked_by = 'kpi-red'
                and links.person_key is distinct from truth.person_key
            """
        )

    def dbt(
        self, *args: str, dbt_vars: dict[str, object] | None = None, manifest: Any = None
    ) -> dbt.DbtResult:
        return dbt.run(
            args,
            settings=self.settings,
            profiles_dir=self.profiles_dir,
            target="test",
            dbt_vars=dbt_vars,
            target_path=self.target_path,
            manifest=manifest,
        )

    def dbt_parse(self) -> Any:
        """The project parsed for this database (``dbt.parse``): ``dbt(manifest=...)``
        then skips parsing, whatever vars it is given."""
        return dbt.parse(
            settings=self.settings,
            profiles_dir=self.profiles_dir,
            target="test",
            target_path=self.target_path,
        )

    def cli_env(self) -> dict[str, str]:
        """Environment for `kpi-red` (CliRunner or subprocess) aimed at this database."""
        return {"KPI_RED_DSN": self.conninfo, "KPI_RED_PROJECT_DIR": str(PROJECT_DIR)}


@pytest.fixture(scope="session")
def socket_dir() -> Path:
    data_dir = embedded_data_dir(PROJECT_DIR)
    return (
        embedded.start(data_dir) if not embedded.status(data_dir).is_running else _running(data_dir)
    )


def _running(data_dir: Path) -> Path:
    current = embedded.status(data_dir)
    assert current.socket_dir is not None
    return current.socket_dir


PROFILE_TEMPLATE = """
kpi_red_recovery:
  target: test
  outputs:
    test:
      type: postgres
      host: "{host}"
      port: 5432
      user: postgres
      password: ""
      dbname: "{dbname}"
      schema: analytics
      threads: 4
"""


@pytest.fixture(scope="session")
def make_database(
    socket_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Database]]:
    """A factory: each call creates a fresh, empty database with the matcher's tables."""
    created: list[str] = []
    settings = load_settings(PROJECT_DIR)

    def factory(*, init: bool = True) -> Database:
        name = f"kpi_red_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        embedded.create_database(socket_dir, name)
        created.append(name)
        home = tmp_path_factory.mktemp(name)
        (home / "profiles.yml").write_text(PROFILE_TEMPLATE.format(host=socket_dir, dbname=name))
        database = Database(
            name=name,
            conninfo=embedded.conninfo(socket_dir, name),
            profiles_dir=home,
            target_path=home / "target",
            settings=settings,
        )
        if init:
            with store_base.connect(database.conninfo) as conn:
                store_admin.init_schema(conn, settings.tables)
        return database

    yield factory
    for name in created:
        embedded.drop_database(socket_dir, name)


@pytest.fixture(scope="session")
def demo_db(make_database: Callable[..., Database]) -> Database:
    """One database with the demo data loaded, shared by read-only tests."""
    from matcher import demo

    database = make_database()
    demo.load(database.conninfo, database.settings, size="demo", seed=42, reset=False)
    return database


@pytest.fixture(scope="module")
def cycled(make_database: Callable[..., Database]) -> Database:
    """The demo after one cycle: built, matched, built (clone it to change it)."""
    import reliability_support as support  # it imports this module

    return support.cycled(make_database)


@pytest.fixture
def copy(cycled: Database, tmp_path: Path) -> Iterator[Database]:
    """A clone of ``cycled`` for one test to change."""
    import reliability_support as support

    with support.cloned(cycled, tmp_path / "db") as database:
        yield database
