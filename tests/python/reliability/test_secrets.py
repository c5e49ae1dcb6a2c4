"""No password from the connection string reaches any output.

Every command that connects, with and without ``--json``, on connection strings that fail
in every way we know: refused, unknown role (the server's own message), and malformed ones
that libpq quotes back (a space in a URI password, an unknown option, a bad port, an
unterminated quote). Each time: exit code 1, one line, no traceback, no password. Two of
them also run as real processes, to see stdout and stderr apart.
(That a successful ``kpi-red cycle`` leaks its password into no log or dbt artifact is
checked in test_idempotence.py, which runs cycles with one.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import reliability_support as support
from click.testing import CliRunner

from matcher.cli import main

pytestmark = pytest.mark.reliability

PASSWORD = "Sup3rS3cret"
FRAGMENTS = (PASSWORD, "Sup3r", "S3cret")


def failing_dsns(socket_dir: Path) -> dict[str, str]:
    return {
        "uri, refused": f"postgresql://u:{PASSWORD}@127.0.0.1:1/x",
        "key=value, refused": f"host=127.0.0.1 port=1 user=u password={PASSWORD} dbname=x",
        "quoted key=value, refused": "host=127.0.0.1 port=1 password='Sup3r S3cret' user=u",
        "unknown role": f"host={socket_dir} user=nobody_kpi_red password={PASSWORD} dbname=x",
        "uri, space in the password": "postgresql://u:Sup3r S3cret@127.0.0.1:1/x",
        "uri, bad port": f"postgresql://u:{PASSWORD}@127.0.0.1:notaport/x",
        "unknown option": f"hots=127.0.0.1 password={PASSWORD}",
        "unterminated quote": "host=127.0.0.1 password='Sup3rS3cret",
        "password in the uri query": f"postgresql://127.0.0.1:1/x?user=u&password={PASSWORD}",
    }


COMMANDS = [
    ["match"],
    ["match", "--json"],
    ["metrics"],
    ["metrics", "--json"],
    ["cycle"],
    ["cycle", "--json"],
    ["init"],
    ["repair-origin"],
    ["repair-origin", "--json"],
]


def assert_clean_failure(output: str, code: int | None) -> None:
    assert code == 1, output
    assert support.one_line_error(output), output
    assert not [fragment for fragment in FRAGMENTS if fragment in output], output


def test_no_password_in_any_failure(socket_dir: Path, tmp_path: Path) -> None:
    env_base = {
        "KPI_RED_PROJECT_DIR": str(support.PROJECT_DIR),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    tried = 0
    for kind, dsn in failing_dsns(socket_dir).items():
        for command in COMMANDS:
            result = CliRunner().invoke(main, command, env={**env_base, "KPI_RED_DSN": dsn})
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                kind,
                command,
                result.exception,
            )
            assert_clean_failure(result.output, result.exit_code)
            tried += 1
    written = [
        path
        for path in tmp_path.rglob("*")
        if path.is_file() and PASSWORD.encode() in path.read_bytes()
    ]
    assert written == []
    print(f"\nsecrets: {tried} failing invocations, no password in any output")


@pytest.mark.parametrize(
    ("kind", "command"),
    [("uri, refused", ["match", "--json"]), ("uri, space in the password", ["cycle", "--json"])],
)
def test_no_password_on_a_real_process_stdout_or_stderr(
    socket_dir: Path, kind: str, command: list[str]
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "KPI_RED_PROJECT_DIR": str(support.PROJECT_DIR),
        "KPI_RED_DSN": failing_dsns(socket_dir)[kind],
    }
    result = subprocess.run(
        [support.KPI_RED, *command], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout == ""
    assert_clean_failure(result.stderr, result.returncode)
