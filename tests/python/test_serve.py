"""`kpi-red serve`: the JSON API and the page, through FastAPI's TestClient.

The API is read against the same dbt-built demo database as test_panel.py and must equal
`kpi-red metrics --json`; database problems are a 503 with a JSON body and no secrets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from test_panel import CONTRACT_KEYS, built_demo_database, model_rows

from matcher import web
from matcher.cli import main

API = web.API_PATH


@pytest.fixture(scope="module")
def built_db(make_database: Callable[..., Any]) -> Any:
    return built_demo_database(make_database)


def client_for(conninfo: str) -> TestClient:
    return TestClient(web.create_app(conninfo=conninfo, time_zone="America/Lima"))


def test_the_api_returns_what_the_cli_prints(built_db: Any) -> None:
    response = client_for(built_db.conninfo).get(API)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    payload = response.json()
    assert list(payload) == CONTRACT_KEYS

    printed = CliRunner().invoke(main, ["metrics", "--json"], env=built_db.cli_env())
    assert printed.exit_code == 0, printed.output
    assert payload == json.loads(printed.output)
    newest = max(model_rows(built_db))
    assert payload["today"]["metric_date"] == newest


def test_the_api_counts_the_backlog_live_when_asked(built_db: Any) -> None:
    client = client_for(built_db.conninfo)
    live = client.get(API, params={"live": "true"}).json()
    printed = CliRunner().invoke(main, ["metrics", "--json", "--live"], env=built_db.cli_env())
    assert live == json.loads(printed.output)
    assert live["current_backlog_is_live"] is True
    assert client.get(API).json()["current_backlog_is_live"] is False


def test_the_api_gives_fourteen_days_for_the_chart(built_db: Any) -> None:
    payload = client_for(built_db.conninfo).get(API, params={"days": 14}).json()
    assert list(payload) == [*CONTRACT_KEYS, "last_14_days"]
    assert len(payload["last_14_days"]) == 14
    assert payload["last_14_days"][-7:] == payload["last_7_days"]


@pytest.mark.parametrize("days", ["0", "367", "seven"])
def test_bad_days_are_a_422(built_db: Any, days: str) -> None:
    assert client_for(built_db.conninfo).get(API, params={"days": days}).status_code == 422


def test_the_page_and_its_assets(built_db: Any) -> None:
    client = client_for(built_db.conninfo)
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for element in ('id="current-backlog"', 'id="chart"', 'id="alerts"', "/static/panel.js"):
        assert element in page.text
    script = client.get("/static/panel.js")
    assert script.status_code == 200 and API in script.text
    assert "setInterval(refresh, REFRESH_MS)" in script.text and "60000" in script.text
    assert client.get("/static/panel.css").status_code == 200
    assert "http" not in page.text.replace("http://www.w3.org", "").split("<body>")[0]


def test_there_is_no_write_path_and_no_docs(built_db: Any) -> None:
    client = client_for(built_db.conninfo)
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)(API).status_code == 405
    for path in ("/docs", "/redoc", "/openapi.json", "/static/../web.py"):
        assert client.get(path).status_code == 404


def test_an_unreachable_database_is_a_503_without_secrets() -> None:
    dsn = "host=/nonexistent/kpi-red-socket dbname=secretdb user=u password=hunter2"
    response = client_for(dsn).get(API)
    assert response.status_code == 503
    assert response.json() == {
        "error": "database_unavailable",
        "message": "The database cannot be read right now.",
    }
    assert response.headers["retry-after"] == "60"
    for secret in ("hunter2", "secretdb", "kpi-red-socket", "Traceback"):
        assert secret not in response.text


def test_unbuilt_models_are_a_503_that_says_so(make_database: Callable[..., Any]) -> None:
    response = client_for(make_database().conninfo).get(API)
    assert response.status_code == 503
    assert response.json()["error"] == "metrics_not_built"
    # the page itself still loads, and shows the message from the API
    assert client_for("host=/nonexistent").get("/").status_code == 200


def test_serve_help_names_the_routes() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert API in result.output and "Example: kpi-red serve" in result.output
