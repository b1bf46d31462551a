"""The console's server on in-process moto: each region's snapshot (jobs by status, failures with reasons, DLQ
depth, datasets), queries only through the guard, and requests from anywhere but its own page refused."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from analytics_platform.console.snapshot import region_snapshot
from analytics_platform.console.web_server import ConsoleServer, ConsoleSource
from analytics_platform.targeting.region_target import RegionTarget
from tests.functional.conftest import BUCKET, DATABASE, REGION, TABLE, Platform

GOOD = b"id,name,score\n1,Ann,1.5\n2,Bo,2.5\n"
BAD = b'{"not": "csv"\n'
TARGET = RegionTarget(REGION, BUCKET, TABLE, DATABASE, "analytics-athena-us-east-1-test",
                      queue_name="analytics-queue-us-east-1-test", dlq_name="analytics-dlq-us-east-1-test")  # fmt: skip


@pytest.fixture
def console(platform: Platform) -> Iterator[tuple[ConsoleServer, Platform]]:
    server = ConsoleServer(ConsoleSource("test", False, [REGION], lambda region: TARGET))
    server.start()
    yield server, platform
    server.shutdown()
    server.server_close()


def request(server: ConsoleServer, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    data = json.dumps(body).encode() if body is not None else None
    connection.request(method, path, body=data, headers={"Content-Type": "application/json", **headers})
    answer = connection.getresponse()
    raw = answer.read()
    kind = answer.getheader("Content-Type", "")
    return answer.status, (json.loads(raw) if "json" in kind else raw.decode())


def test_a_region_snapshot_counts_jobs_lists_failures_with_reasons_and_shows_datasets(platform: Platform) -> None:
    platform.upload_and_process("raw/orders/good.csv", GOOD)
    platform.upload_and_process("raw/orders/<b>bad</b>.json", BAD)
    platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody="{}")
    snapshot = region_snapshot(TARGET)
    assert snapshot["errors"] == {}
    assert snapshot["job_counts"]["SUCCEEDED"] == 1 and snapshot["job_counts"]["FAILED"] == 1
    assert snapshot["jobs_total"] == 2 and sum(sum(p["counts"].values()) for p in snapshot["timeline"]) == 2
    (failure,) = snapshot["failures"]
    assert failure["key"] == "raw/orders/<b>bad</b>.json" and failure["status"] == "FAILED" and failure["error"]
    assert snapshot["dlq_depth"] == 1
    (orders,) = snapshot["datasets"]
    assert (orders["dataset"], orders["rows"], orders["files"]) == ("orders", 2, 1)
    assert snapshot["outputs"]["bucket"] == BUCKET


def test_a_part_that_cannot_be_read_says_why_and_the_rest_is_shown(platform: Platform) -> None:
    broken = RegionTarget(REGION, BUCKET, TABLE, DATABASE, "wg", queue_name="q", dlq_name="no-such-dlq")
    snapshot = region_snapshot(broken)
    assert "dlq_depth" in snapshot["errors"] and "NonExistentQueue" in snapshot["errors"]["dlq_depth"]
    assert snapshot["job_counts"]["SUCCEEDED"] == 0 and snapshot["datasets"] == []


def test_the_server_serves_the_page_the_overview_and_each_configured_region_only(
    console: tuple[ConsoleServer, Platform],
) -> None:
    server, _ = console
    status, page = request(server, "GET", "/")
    assert status == 200 and "<title>tap console</title>" in page
    own = {"X-Tap-Console": server.token}
    assert request(server, "GET", "/api/overview", **own) == (200, {"environment": "test", "local": False,
                                                                    "regions": [REGION]})  # fmt: skip
    status, snapshot = request(server, "GET", f"/api/regions/{REGION}", **own)
    assert status == 200 and snapshot["region"] == REGION
    assert request(server, "GET", "/api/regions/eu-west-1", **own)[0] == 404
    assert request(server, "GET", "/api/regions/..%2F..%2Fetc", **own)[0] == 404
    # without the session token (another site's page, a link someone sent) nothing is read
    assert request(server, "GET", "/api/overview")[0] == 403
    assert request(server, "GET", "/api/overview", **{"X-Tap-Console": "1"})[0] == 403
    assert request(server, "GET", "/api/overview", **own, **{"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert server.url.endswith(f"/?token={server.token}")


def test_a_query_naming_another_regions_database_is_refused_before_it_runs(
    console: tuple[ConsoleServer, Platform],
) -> None:
    server, _ = console
    elsewhere = {"region": REGION, "sql": "SELECT * FROM analytics_eu_west_1_test.orders"}
    status, answer = request(server, "POST", "/api/query", elsewhere, **{"X-Tap-Console": server.token})
    assert status == 400 and answer["refused"] is True and answer["error"].startswith("refused:")
    status, answer = request(server, "POST", "/api/query", {"region": REGION, "sql": "DROP TABLE orders"},
                             **{"X-Tap-Console": server.token})  # fmt: skip
    assert status == 400 and answer["refused"] is True
    status, answer = request(server, "POST", "/api/query", {"region": "eu-west-1", "sql": "SELECT 1"},
                             **{"X-Tap-Console": server.token})  # fmt: skip
    assert status == 400 and "not a region of test" in answer["error"]


def test_requests_from_anywhere_but_its_own_page_are_refused(console: tuple[ConsoleServer, Platform]) -> None:
    server, _ = console
    query = {"region": REGION, "sql": "SELECT 1"}
    # another site's page cannot add the console's header without a preflight this server never grants
    assert request(server, "POST", "/api/query", query)[0] == 403
    # DNS rebinding: a request addressed to another host name
    assert request(server, "GET", "/api/overview", Host="evil.example:80")[0] == 403
    assert (
        request(server, "POST", "/api/query", query, Host="evil.example", **{"X-Tap-Console": server.token})[0] == 403
    )
    assert request(server, "OPTIONS", "/api/query")[0] == 501  # no CORS preflight answered
    assert request(server, "POST", "/api/query", "x" * 70_000, **{"X-Tap-Console": server.token})[0] == 413
    assert request(server, "POST", "/api/query", {"sql": 1}, **{"X-Tap-Console": server.token})[0] == 400


def test_a_refused_request_closes_its_connection_so_its_body_is_never_read_as_a_request(
    console: tuple[ConsoleServer, Platform],
) -> None:
    import socket

    server, _ = console
    port = server.server_address[1]
    inner = json.dumps({"region": REGION, "sql": "SELECT 1 AS smuggled"})
    smuggled = (f"POST /api/query HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Tap-Console: {server.token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(inner)}\r\n\r\n{inner}")  # fmt: skip
    # GIVEN a request without the token whose body is a whole second request (what a no-cors fetch can send)
    outer = (f"POST /api/query HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(smuggled)}\r\n\r\n"
             f"{smuggled}")  # fmt: skip
    for request_text in (outer, outer.replace(f"Content-Length: {len(smuggled)}", "Content-Length: abc")):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(request_text.encode())
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        # THEN one refusal comes back and the connection ends: the inner request never runs
        assert answer.count(b"HTTP/1.1 ") == 1 and answer.startswith(b"HTTP/1.1 403"), answer[:300]
        assert b"smuggled" not in answer


def test_a_large_result_shows_its_first_rows_and_says_how_many_there_are(
    console: tuple[ConsoleServer, Platform], monkeypatch: pytest.MonkeyPatch
) -> None:
    from analytics_platform.analytics import commands
    from analytics_platform.analytics.result import QueryResult
    from analytics_platform.console import web_server

    big = QueryResult(["n"], [(i,) for i in range(web_server.CONSOLE_ROWS + 1500)], "duckdb")
    monkeypatch.setattr(commands, "run_query", lambda target, sql: big)
    server, _ = console
    status, answer = request(server, "POST", "/api/query", {"region": REGION, "sql": "SELECT n FROM orders"},
                             **{"X-Tap-Console": server.token})  # fmt: skip
    assert status == 200 and answer["total_rows"] == web_server.CONSOLE_ROWS + 1500
    assert answer["rows"] == [[i] for i in range(web_server.CONSOLE_ROWS)]


def test_the_datasets_part_is_read_once_a_minute_not_on_every_refresh(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analytics_platform.console import snapshot

    reads: list[str] = []
    monkeypatch.setattr(snapshot, "_datasets", lambda target: reads.append(target.region) or {"datasets": []})
    target = RegionTarget(REGION, BUCKET, TABLE, DATABASE, "wg")
    cache = snapshot.PartCache(seconds=60)
    for _ in range(3):  # three refreshes within the minute: one read
        assert snapshot.region_snapshot(target, cache=cache)["datasets"] == []
    assert reads == [REGION]
    expired = snapshot.PartCache(seconds=0)
    snapshot.region_snapshot(target, cache=expired)
    snapshot.region_snapshot(target, cache=expired)
    assert reads == [REGION] * 3
