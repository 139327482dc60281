"""Source health: `penstock check` reaches every source (files, a database, a REST API) and
says how long it took or why not; each run records a sample per source reached, and
`penstock status` shows each source's recent uptime from them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rest_api import Api, Fault, serve

OBJECT = """
  {name}:
    source: {source}
    endpoint: /plain
    key: [id]
    columns:
      id: {{type: bigint}}
"""


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    yield from serve()


def project_with(root: Path, sources: dict[str, str], objects: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = ["name: health", "sources:"]
    lines += [f"  {name}: {{{spec}}}" for name, spec in sources.items()]
    lines.append("objects:")
    lines += [OBJECT.format(name=name, source=source) for name, source in objects.items()]
    (root / "penstock.yml").write_text("\n".join(lines) + "\n")
    return root


def checked(cli: Any, project: Path) -> dict[str, dict[str, Any]]:
    code, out, _ = cli("check", "-p", project, "--json")
    assert code == 2  # a source is out of reach
    return {c["what"]: c for c in json.loads(out)["checks"] if c["what"].startswith("source ")}


@pytest.mark.usefixtures("no_secrets")
def test_check_reaches_every_api_and_directory(
    api: Api, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.reset()
    api.auth = ("bearer", "Right-token-1234")
    monkeypatch.setenv("GOOD", "Right-token-1234")
    monkeypatch.setenv("BAD", "Wrong-token-5678")
    fast = "retry: {attempts: 3, backoff: 1ms, max_delay: 1ms}"
    rest = f'kind: rest, base_url: "{api.url}/v1", {fast}'
    project = project_with(
        tmp_path / "p",
        {
            "good": f'{rest}, auth: {{type: bearer, token: "${{env:GOOD}}"}}',
            "locked": f'{rest}, auth: {{type: bearer, token: "${{env:BAD}}"}}',
            "closed": f'kind: rest, base_url: "http://127.0.0.1:1", {fast}',
            "landing": "kind: files, path: ./nowhere",
        },
        {"a": "good", "b": "locked", "c": "closed"},
    )
    found = checked(cli, project)
    good, locked, closed = found["source good"], found["source locked"], found["source closed"]
    # the API's root is not an endpoint (404): reached all the same, once, with its time
    assert good["level"] == "ok"
    assert good["detail"].startswith(f"{api.url}/v1 answered 404 in ")
    assert 0 < good["latency_s"] < 5
    assert locked["level"] == "error"
    assert locked["detail"] == (
        f"source 'locked': GET {api.url}/v1: answered 401 Unauthorized "
        "(authentication failed: check the source's auth:)"
    )
    assert closed["level"] == "error" and "latency_s" not in closed
    assert closed["detail"].startswith("source 'closed': GET http://127.0.0.1:1: no answer: ")
    assert found["source landing"]["detail"] == "directory ./nowhere does not exist"
    assert len([r for r in api.requests if r.path == "/v1"]) == 2  # tried once each, no retry
    assert "Wrong-token-5678" not in json.dumps(found)


@pytest.mark.services
def test_check_reaches_a_database(pg_url: str, tmp_path: Path, cli: Any) -> None:
    closed = "postgresql://postgres@127.0.0.1:1/test"
    project = project_with(
        tmp_path / "p",
        {
            "db": f'kind: postgres, url: "{pg_url}"',
            "gone": f'kind: postgres, url: "{closed}"',
            "replica": f'kind: postgres, url: "{closed}", failover: ["{pg_url}"]',
        },
        {},
    )
    found = checked(cli, project)
    db, gone, replica = found["source db"], found["source gone"], found["source replica"]
    shown = "postgresql://127.0.0.1:5432/" + pg_url.rsplit("/", 1)[1]
    assert db["level"] == "ok" and db["latency_s"] > 0
    assert db["detail"].startswith(f"{shown} answered in ")
    assert gone["level"] == "error" and "latency_s" not in gone
    assert gone["detail"].startswith(
        "source 'gone': cannot connect to postgresql://127.0.0.1:1/test: "
    )
    # the primary is out of reach, its replica answers: reachable, with a warning saying so
    assert replica["level"] == "warning"
    assert replica["detail"].startswith(
        f"read from failover server 1 ({shown}): cannot connect to postgresql://127.0.0.1:1/test"
    )
    assert "; it answered in " in replica["detail"]


def test_status_shows_each_sources_recent_uptime(api: Api, tmp_path: Path, cli: Any) -> None:
    api.reset()
    api.records = [{"id": 1, "updated_at": "2024-01-01"}]
    project = project_with(
        tmp_path / "p",
        {"shop": f'kind: rest, base_url: "{api.url}", retry: {{attempts: 1}}'},
        {"orders": "shop", "refunds": "shop"},
    )
    for faults in ([], [Fault(503)] * 2, []):  # the second run finds the API down
        api.faults = list(faults)
        cli("run", "-p", project)
    code, out, _ = cli("status", "-p", project, "--json")
    assert code == 0
    (shop,) = json.loads(out)["sources"]
    # one sample per object per run: 6, of which the second run's 2 were down
    assert (shop["checks"], shop["up"], shop["last_up"]) == (6, 4, True)
    assert shop["uptime"] == pytest.approx(4 / 6)
    assert 0 < shop["last_latency_s"] < 5
    code, out, _ = cli("status", "-p", project)
    assert "Sources, as runs reached them (last 7 days)" in out
    assert "│ shop   │ rest │ up  │  66.7% │      6 │" in out
