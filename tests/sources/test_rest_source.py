"""REST sources against a real HTTP server on 127.0.0.1 (tests/rest_api.py): every pagination
style reads exactly the server's data; 429 / 5xx / slow answers are tried again (honouring
Retry-After) or fail with one line naming the URL; a truncated page stages nothing; a record
repeated across pages is one row; incremental runs read from the watermark; a crash between
extract and load neither skips nor doubles a window; each auth style reaches the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

import penstock
from penstock.lake import Lake

from helpers import query
from rest_api import Api, Fault, serve

FAST = "retry: {attempts: 3, backoff: 1ms, max_delay: 10ms}"
COLUMNS = """
    key: [id]
    columns:
      id: {type: bigint}
      name: {type: text}
      amount: {type: "decimal(10,2)"}
      updated_at: {type: timestamp}
      city: {type: text, from: address.city}
      tags: {type: json}
"""
STYLES = {
    "plain": "endpoint: /plain",
    "pages": "endpoint: /pages\n    records: data.items\n    pagination: {type: page_number}",
    "sized": "endpoint: /pages\n    records: data.items\n    "
    "pagination: {type: page_number, param: page, start: 1, size_param: per_page, size: 2}",
    "offset": "endpoint: /offset\n    records: results\n    "
    "pagination: {type: offset, offset_param: offset, limit_param: limit, limit: 3}",
    "cursor": "endpoint: /cursor\n    records: items\n    "
    "pagination: {type: cursor, path: meta.next, param: cursor}",
    "next_url": "endpoint: /next\n    records: items\n    pagination: {type: next_url, path: next}",
    "link": "endpoint: /link\n    pagination: {type: link_header}",
}


@pytest.fixture(scope="module")
def server() -> Iterator[Api]:
    yield from serve()


@pytest.fixture
def api(server: Api) -> Api:
    server.reset()
    server.records = [record(i) for i in range(1, 9)]
    return server


def record(i: int, day: int = 1, name: str | None = None) -> dict[str, Any]:
    return {
        "id": i,
        "name": name or f"customer {i} ü",
        "amount": f"{i}.50",
        "updated_at": f"2024-01-{day:02d}T00:00:{i:02d}",
        "address": {"city": f"city {i}", "zip": f"{i:05d}"},
        "tags": ["vip", i],
    }


def expected(api: Api) -> list[tuple[Any, ...]]:
    return sorted(
        (
            r["id"],
            r["name"],
            Decimal(r["amount"]),
            r["updated_at"].replace("T", " "),
            r["address"]["city"],
            f'["vip",{r["id"]}]',
        )
        for r in api.records
    )


def table(project: Path, name: str = "customers") -> list[tuple[Any, ...]]:
    return sorted(
        (r[0], r[1], r[2], str(r[3]), r[4], r[5])
        for r in query(project, f"SELECT id, name, amount, updated_at, city, tags FROM {name}")
    )


def api_project(
    root: Path, api: Api, objects: dict[str, str], source: str = FAST, columns: str = COLUMNS
) -> Path:
    """A project whose source `shop` is `api`, each object `name: settings` of it."""
    body = "".join(
        f"  {name}:\n    source: shop\n    {settings}\n{columns.strip(chr(10))}\n"
        for name, settings in objects.items()
    )
    root.mkdir(parents=True, exist_ok=True)
    (root / "penstock.yml").write_text(
        f'name: restsrc\nsources:\n  shop: {{kind: rest, base_url: "{api.url}", {source}}}\n'
        f"objects:\n{body}\n"
    )
    return root


def run(project: Path) -> penstock.RunResult:
    return penstock.run(project)


def run_ok(project: Path) -> penstock.RunResult:
    result = penstock.run(project)
    assert result.status == "success", [o.error for o in result.outcomes if o.error]
    return result


def error_of(result: penstock.RunResult) -> str:
    assert result.status == "failed"
    (error,) = {o.error for o in result.outcomes if o.error}
    assert error is not None
    return error


def test_every_pagination_style_reads_exactly_the_servers_data(api: Api, tmp_path: Path) -> None:
    project = api_project(tmp_path / "p", api, {f"c_{k}": v for k, v in STYLES.items()})
    run_ok(project)
    for style in STYLES:
        assert table(project, f"c_{style}") == expected(api), style
    pages = {
        style: [r.query for r in api.requests if r.path == path]
        for style, path in [("pages", "/pages"), ("offset", "/offset"), ("cursor", "/cursor")]
    }
    # numbered pages end at the first empty page; the cursor at the first page without one
    assert [q["page"] for q in pages["pages"] if "per_page" not in q] == ["1", "2", "3", "4"]
    assert [q["page"] for q in pages["pages"] if q.get("per_page") == "2"] == [
        "1",
        "2",
        "3",
        "4",
        "5",
    ]
    assert [q["offset"] for q in pages["offset"]] == ["0", "3", "6", "8"]
    assert [q.get("cursor") for q in pages["cursor"]] == [None, "c3", "c6"]


def test_429_with_retry_after_and_5xx_are_tried_again(api: Api, tmp_path: Path) -> None:
    api.faults = [Fault(429, {"Retry-After": "1"}), Fault(500), Fault(503)]
    source = "retry: {attempts: 4, backoff: 1ms, max_delay: 300ms}"
    project = api_project(tmp_path / "p", api, {"customers": STYLES["plain"]}, source)
    run_ok(project)
    assert table(project) == expected(api)
    at = [r.at for r in api.requests]
    assert len(at) == 4
    # Retry-After (1 s) is waited, up to max_delay (300 ms); the 5xx waits are jitter (<= 2 ms)
    assert 0.28 <= at[1] - at[0] < 0.9
    assert at[2] - at[1] < 0.2 and at[3] - at[2] < 0.2


def test_tries_run_out_with_one_line_naming_url_and_status(api: Api, tmp_path: Path) -> None:
    api.faults = [Fault(502)] * 3
    project = api_project(tmp_path / "p", api, {"customers": STYLES["pages"]})
    error = error_of(run(project))
    assert error == (
        f"source 'shop': GET {api.url}/pages?page=1 (page 1): answered 502 Bad Gateway "
        "after 3 tries"
    )
    assert len(api.requests) == 3
    assert Lake(project / "lake").batches("customers") == []


def test_a_response_slower_than_the_read_timeout(api: Api, tmp_path: Path) -> None:
    api.faults = [Fault(delay=0.6), Fault(delay=0.6)]
    source = "read_timeout: 200ms, retry: {attempts: 2, backoff: 1ms, max_delay: 1ms}"
    project = api_project(tmp_path / "p", api, {"customers": STYLES["plain"]}, source)
    error = error_of(run(project))
    assert (
        error
        == f"source 'shop': GET {api.url}/plain (page 1): timed out waiting (200ms) after 2 tries"
    )
    api.faults = [Fault(delay=0.6)]  # one slow answer, then a prompt one: loaded
    run_ok(project)
    assert table(project) == expected(api)


def test_truncated_json_stages_nothing_from_the_window(api: Api, tmp_path: Path) -> None:
    api.faults = [Fault(), Fault(truncate=True)]
    project = api_project(tmp_path / "p", api, {"customers": STYLES["pages"]})
    error = error_of(run(project))
    assert error.startswith(
        f"source 'shop': GET {api.url}/pages?page=2 (page 2): the body is not valid JSON ("
    )
    assert error.endswith("nothing from this read of 'customers' was staged")
    assert Lake(project / "lake").batches("customers") == []
    assert not list((project / "lake").rglob("*.parquet"))
    run_ok(project)  # the server answers whole pages again: the window loads
    assert table(project) == expected(api)


def test_a_record_repeated_across_pages_is_one_row(api: Api, tmp_path: Path) -> None:
    api.overlap = True  # each offset page starts with the last record of the page before
    project = api_project(tmp_path / "p", api, {"customers": STYLES["offset"]})
    run_ok(project)
    assert table(project) == expected(api)
    (batch,) = Lake(project / "lake").batches("customers")
    assert batch.manifest.rows > len(api.records)  # the repeats were read, and merged by key
    # the next run reads the same pages: the window holds what its batch holds, nothing new
    result = run_ok(project)
    assert [o.status for o in result.outcomes if o.step == "stage"] == ["skipped"]
    assert len(Lake(project / "lake").batches("customers")) == 1


def test_incremental_runs_read_from_the_watermark(api: Api, tmp_path: Path) -> None:
    settings = STYLES["next_url"] + "\n    incremental: {param: updated_since, cursor: updated_at}"
    project = api_project(tmp_path / "p", api, {"customers": settings})
    run_ok(project)
    assert table(project) == expected(api)
    assert "updated_since" not in api.requests[0].query  # the first window reads everything
    watermark = max(r["updated_at"] for r in api.records)
    api.records[1] = record(2, day=2, name="renamed")
    api.records.append(record(9, day=3))
    api.requests.clear()
    run_ok(project)
    assert table(project) == expected(api)
    assert api.requests[0].query["updated_since"] == watermark
    loads = query(
        project,
        "SELECT rows_in, rows_inserted, rows_updated, rows_unchanged FROM penstock.loads "
        "ORDER BY loaded_at",
    )
    # run 2 read the record on the watermark again (unchanged), the change and the new one
    assert loads == [(8, 8, 0, 0), (3, 1, 1, 1)]
    windows = [b.manifest.window for b in Lake(project / "lake").batches("customers")]
    assert {(w["low"], w["high"]) for w in windows if w} == {
        (None, watermark),
        (watermark, "2024-01-03T00:00:09"),
    }


def run_killed_at(project: Path, point: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", "run", "-p", str(project)],
        env={**os.environ, "PENSTOCK_FAULT": point},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.chaos
# after_stage runs the engine code a database window's crash test proves (suite time)
@pytest.mark.parametrize("point", ["after_extract"])
def test_a_crash_between_extract_and_load(api: Api, tmp_path: Path, point: str) -> None:
    settings = STYLES["pages"] + "\n    incremental: {param: updated_since, cursor: updated_at}"
    project = api_project(tmp_path / "p", api, {"customers": settings})
    run_ok(project)
    api.records[4] = record(5, day=2, name="changed")
    api.records.append(record(9, day=2))
    killed = run_killed_at(project, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    staged = Lake(project / "lake").batches("customers")
    assert len(staged) == (1 if point == "after_extract" else 2)
    api.records.append(record(10, day=3))  # more arrives before the next run
    run_ok(project)
    assert table(project) == expected(api)
    loads = query(project, "SELECT batch_id, rows_inserted, rows_updated FROM penstock.loads")
    assert len({r[0] for r in loads}) == len(loads)  # no batch loaded twice
    assert sum(r[1] for r in loads) == 10  # each record inserted once
    assert sum(r[2] for r in loads) == 1  # the change applied once


AUTH = {
    "bearer": ('auth: {type: bearer, token: "${env:REST_SECRET}"}', ("bearer",)),
    "basic": (
        'auth: {type: basic, username: etl, password: "${env:REST_SECRET}"}',
        ("basic", "etl"),
    ),
    "header": (
        'auth: {type: api_key, name: X-Api-Key, value: "${env:REST_SECRET}", in: header}',
        ("header", "X-Api-Key"),
    ),
    "query": (
        'auth: {type: api_key, name: api_key, value: "${env:REST_SECRET}", in: query}',
        ("query", "api_key"),
    ),
}


@pytest.mark.parametrize("style", list(AUTH))
@pytest.mark.usefixtures("no_secrets")
def test_each_auth_style_is_verified_by_the_server(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str
) -> None:
    secret = "Tok-3f9a1c7e5b2d"
    monkeypatch.setenv("REST_SECRET", secret)
    yaml, expect = AUTH[style]
    api.auth = (*expect, secret)
    project = api_project(tmp_path / "p", api, {"customers": STYLES["link"]}, f"{yaml}, {FAST}")
    run_ok(project)
    assert table(project) == expected(api)
    assert len(api.requests) == 3  # every page carried the credential


def everything_written(project: Path) -> bytes:
    """Every byte penstock wrote under the project: store, lake, warehouse, lineage."""
    return b"".join(p.read_bytes() for p in sorted(project.rglob("*")) if p.is_file())


@pytest.mark.parametrize("style", ["bearer", "query"])
@pytest.mark.usefixtures("no_secrets")
def test_a_failed_auth_shows_the_secret_nowhere(
    api: Api,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Any,
    style: str,
) -> None:
    wrong = "Wrong-9c41d7e2a8f35b60"
    monkeypatch.setenv("REST_SECRET", wrong)
    yaml, expect = AUTH[style]
    api.auth = (*expect, "Right-the-server-wants-this")
    source = f"{yaml}, {FAST}"
    project = api_project(tmp_path / "p", api, {"customers": STYLES["pages"]}, source)
    code, out, err = cli("run", "-p", project)
    assert code == 1
    line = (
        f"source 'shop': GET {api.url}/pages?page=1 (page 1): answered 401 Unauthorized "
        "(authentication failed: check the source's auth:)"
    )
    assert line in " ".join((out + err).split())
    assert len(api.requests) == 1  # a 401 is not tried again
    assert wrong not in out + err
    code, logs, _ = cli("logs", "-p", project, "--level", "info", "--json")
    assert code == 0 and wrong not in logs and line in logs
    for command in (("status", "--json"), ("runs", "--json"), ("lineage", "customers")):
        code, out, err = cli(*command, "-p", project)
        assert wrong not in out + err, command
    lineage = project / ".penstock" / "openlineage.jsonl"
    assert b"page=1" in lineage.read_bytes() and wrong.encode() not in lineage.read_bytes()
    assert wrong.encode() not in everything_written(project)  # store, lake, lineage...


def test_values_that_do_not_fit_are_quarantined_not_rewritten(api: Api, tmp_path: Path) -> None:
    api.records = [record(1), record(2), record(3)]
    api.records[1]["amount"] = "12.3.4"
    api.records[2]["id"] = "3"  # JSON text "3": a bigint, as in a JSON file
    big = "12345678901234567.25"  # more digits than a double holds: kept exactly
    columns = COLUMNS.replace('"decimal(10,2)"', '"decimal(30,2)"')
    project = api_project(tmp_path / "p", api, {"customers": STYLES["plain"]}, columns=columns)
    api.records[0]["amount"] = Decimal(big)  # sent as a JSON number
    api.records.append("not an object")  # type: ignore[arg-type]
    run_ok(project)
    rows = query(project, "SELECT id, amount FROM customers ORDER BY id")
    assert rows == [(1, Decimal(big)), (3, Decimal("3.50"))]
    quarantined = query(
        project, "SELECT _reasons, id, amount, _raw_line FROM quarantine.customers ORDER BY 1"
    )
    assert quarantined == [
        (["malformed"], None, None, '"not an object"'),
        (["type:amount"], "2", "12.3.4", None),  # kept as the API sent it
    ]


@pytest.mark.parametrize(
    ("source", "settings", "message"),
    [
        (
            'auth: {type: bearer, token: "tok-in-clear-123"}',
            "endpoint: /plain",
            "penstock.yml is not a place for the token",
        ),
        ("rate_limit: fast", "endpoint: /plain", "expected a rate such as 10/s"),
        ("", "endpoint: http://elsewhere/x", "endpoint: is a path under base_url"),
        ("", "files: '*.json'", "give endpoint: (source 'shop' is a REST API)"),
        ("", "endpoint: /plain\n    load: append", "load: merge or scd2 with a key"),
        (
            "",
            "endpoint: /plain\n    incremental: {param: since, cursor: changed}",
            "incremental cursor 'changed' is not a declared column",
        ),
        (
            "",
            "endpoint: /plain\n    pagination: {type: page_number, size: 10}",
            "give size_param: and size: together",
        ),
    ],
)
def test_settings_are_checked_at_load(
    server: Api, tmp_path: Path, cli: Any, source: str, settings: str, message: str
) -> None:
    source = ", ".join(s for s in (source, FAST) if s)
    project = api_project(tmp_path / "p", server, {"customers": settings}, source)
    code, out, err = cli("run", "-p", project)
    assert code == 2
    assert message in " ".join((out + err).split())
    assert "tok-in-clear-123" not in out + err


def test_the_rate_limit_spaces_requests(api: Api, tmp_path: Path) -> None:
    project = api_project(
        tmp_path / "p", api, {"customers": STYLES["pages"]}, f"rate_limit: 20/s, {FAST}"
    )
    run_ok(project)
    assert table(project) == expected(api)
    at = [r.at for r in api.requests]
    assert len(at) == 4
    gaps = [round(b - a, 3) for a, b in pairwise(at)]
    # 50 ms apart as sent (arrival times jitter by a few ms; unlimited, they are ~1 ms apart)
    assert at[-1] - at[0] >= 0.13 and all(g >= 0.025 for g in gaps), gaps


def test_unreachable_host_and_a_foreign_next_page(api: Api, tmp_path: Path) -> None:
    closed = api_project(tmp_path / "closed", api, {"customers": STYLES["plain"]})
    yml = closed / "penstock.yml"
    yml.write_text(yml.read_text().replace(api.url, "http://127.0.0.1:1"))
    error = error_of(run(closed))
    assert error.startswith("source 'shop': GET http://127.0.0.1:1/plain (page 1): no answer: ")
    assert error.endswith("after 3 tries")

    api.faults = [Fault(body=b'{"items": [], "next": "http://localhost:9/steal"}')]
    project = api_project(tmp_path / "p", api, {"customers": STYLES["next_url"]})
    error = error_of(run(project))
    assert "the next page is on another host (http://localhost:9/steal)" in error
    assert "sends the source's credentials to its base_url's host only" in error


def test_a_redirect_to_another_host_is_refused(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_header = 'auth: {type: api_key, name: X-Key, value: "${env:REST_SECRET}"}'
    monkeypatch.setenv("REST_SECRET", "Tok-3f9a1c7e5b2d")
    api.faults = [Fault(302, {"Location": "http://localhost:9/elsewhere?x=1"})]
    project = api_project(
        tmp_path / "p", api, {"customers": STYLES["plain"]}, f"{secret_header}, {FAST}"
    )
    error = error_of(run(project))
    assert error == (
        "source 'shop': a request was sent on to another host (http://localhost:9/elsewhere); "
        "penstock sends the source's credentials to its base_url's host only"
    )


def test_retry_after_in_seconds_or_as_a_date() -> None:
    from email.utils import format_datetime

    from penstock.sources.rest_http import retry_after_seconds

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds("0") == 0.0 and retry_after_seconds(" 7 ") == 7.0
    assert 25 < (retry_after_seconds(later) or 0) <= 30
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # past: at once
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
