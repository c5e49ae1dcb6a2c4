"""The package's shape, checked: no import circle, no long module, PostgreSQL only behind
``matcher.store``, and no multi-line SQL in a Python string."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "matcher"
MAX_LINES = 430
"""About 400: a module longer than this does more than one job."""
CONNINFO_PARSERS = {"matcher.secrets", "matcher.connection"}
"""Modules that may use ``psycopg.conninfo`` (libpq's connection-string parser: no I/O)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> set[str]:
    """The modules of ours that ``name`` imports, at any depth of its code."""
    tree = ast.parse(MODULES[name].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("matcher"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
    found.discard(name)
    return found


def test_no_import_circle() -> None:
    graph = {name: imports(name) for name in MODULES}
    # a package imports its modules; a module importing its own package is no circle
    for name in graph:
        graph[name] = {other for other in graph[name] if not name.startswith(other + ".")}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            pytest.fail("import circle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for other in sorted(graph.get(name, ())):
            visit(other, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_leaves_import_nothing_of_ours() -> None:
    assert imports("matcher.secrets") == set()
    assert imports("matcher.project") == set()
    assert imports("matcher.settings") == {"matcher.project"}
    assert imports("matcher.records") == set()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_long(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_only_the_store_talks_to_postgresql(name: str) -> None:
    if name.startswith("matcher.store"):
        return
    tree = ast.parse(MODULES[name].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(alias.name.startswith("psycopg") for alias in node.names), name
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("psycopg"):
            assert node.module == "psycopg.conninfo" or (
                name in CONNINFO_PARSERS and node.module == "psycopg"
            ), f"{name} imports {node.module}"


SQL_WORDS = ("select ", "insert ", "update ", "delete ", "create ", "copy ", " from ")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_multi_line_sql_in_python(name: str) -> None:
    """Statements longer than a line live in ``matcher/store/sql``, where sqlfluff reads
    them (docstrings and help texts aside)."""
    tree = ast.parse(MODULES[name].read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            text = node.value.lower()
            if "\n" in text.strip() and sum(word in text for word in SQL_WORDS) >= 2:
                pytest.fail(f"{name}:{node.lineno}: SQL in a Python string")


def test_the_matcher_exposure_lists_what_the_matcher_reads() -> None:
    """dbt's lineage of the matcher (``exposure:kpi_red_matcher``: ``dbt ls --select
    +exposure:kpi_red_matcher``) is every dbt relation the Python's runs read."""
    import yaml

    from matcher.store import relations

    exposures = yaml.safe_load(
        (PACKAGE.parent / "models" / "interface" / "_interface__exposures.yml").read_text()
    )["exposures"]
    (matcher,) = [exposure for exposure in exposures if exposure["name"] == "kpi_red_matcher"]
    listed = {ref.removeprefix("ref('").removesuffix("')") for ref in matcher["depends_on"]}
    assert listed == {name for _schema, name in relations.MATCHER_READS}
