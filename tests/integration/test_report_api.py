"""`GET /v1/reports/summary` over real HTTP on the hand-built record of test_report_figures.

One intake API serves the module on a fresh schema holding that record; its clock is fixed at
6 December 2026, so the default period is November 2026 in the zone's time. Who may read:
the commander only; every other role is refused and no token is 401.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from consumers.auth import Role
from consumers.intake import build_app
from dispatch.settings import Settings
from infra.topics import TopicDecl, ensure_topics
from tests.integration.principals import Caller, connection, enterprise, fresh_store, make_caller
from tests.integration.test_intake_api import serving, started_producer
from tests.integration.test_report_figures import write_record

NOW = datetime(2026, 12, 6, 10, tzinfo=UTC)
PATH = "/v1/reports/summary"
NOVEMBER = {"from": "2026-11-01", "to": "2026-12-01"}


@dataclass(frozen=True)
class Service:
    """The running intake API and one caller of every role."""

    http: httpx.AsyncClient
    callers: dict[str, Caller]


@pytest.fixture(scope="module")
async def service(bootstrap: str, postgres_url: str) -> AsyncIterator[Service]:
    """Serve the intake API for the module over the hand-built record."""
    topic = f"t.alarms.raw.{uuid.uuid4().hex[:12]}"
    await ensure_topics(bootstrap, [TopicDecl(topic, 1)])
    settings = Settings(rate_limit_per_minute=10_000)
    async with (
        fresh_store(postgres_url) as pool,
        started_producer(bootstrap) as producer,
        serving(
            build_app(settings, producer=producer, pool=pool, topic=topic, now=lambda: NOW)
        ) as url,
        httpx.AsyncClient(base_url=url, timeout=300.0) as http,
    ):
        async with connection(pool) as conn:
            await write_record(conn)
        callers = {
            "commander": await make_caller(pool, Role.COMMANDER),
            "desk": await make_caller(pool, Role.DESK, enterprise_id=enterprise()),
            "guard": await make_caller(pool, Role.GUARD, enterprise_id=enterprise()),
            "patrol": await make_caller(pool, Role.PATROL),
            "unit": await make_caller(pool, Role.UNIT),
            "sensor": await make_caller(pool, Role.SENSOR),
            "admin": await make_caller(pool, Role.ADMIN),
        }
        yield Service(http, callers)


async def test_commander_reads_the_figures(service: Service) -> None:
    answer = await service.http.get(
        PATH, params=NOVEMBER, headers=service.callers["commander"].headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # November 2026 in Asia/Shanghai starts at 16:00 UTC on 31 October.
    assert body["period"] == {
        "start": "2026-10-31T16:00:00.000Z",
        "end": "2026-11-30T16:00:00.000Z",
    }
    assert body["year_before"]["start"] == "2025-10-31T16:00:00.000Z"
    changes = {c["key"]: c for c in body["changes"]}
    # Worked out in test_report_figures: alarms 10 against 8 and 20, criminal 2 against 5, 4.
    assert (changes["alarms"]["mom_pct"], changes["alarms"]["yoy_pct"]) == (25.0, -50.0)
    assert (changes["criminal"]["current"], changes["criminal"]["yoy_pct"]) == (2, -50.0)
    nfpa = body["compliance"]["nfpa_1225"]
    assert (nfpa["dispatched"], nfpa["within"], nfpa["met"]) == (6, 5, False)
    overall = {s["interval"]: s for s in body["intervals"] if s["scope"] == "overall"}
    assert (overall["response"]["n"], overall["response"]["p50_s"]) == (4, 230.0)
    assert body["mutual_aid"]["mean_answered_per_incident"] == 1.5
    assert body["timezone"] == "Asia/Shanghai"


async def test_no_period_means_the_last_full_month(service: Service) -> None:
    headers = service.callers["commander"].headers
    default = await service.http.get(PATH, headers=headers)
    assert default.status_code == 200, default.text
    # The clock says 6 December 2026: the last full month is November.
    assert default.json()["period"]["start"] == "2026-10-31T16:00:00.000Z"
    assert default.json()["counts"]["incidents"] == 7


@pytest.mark.parametrize("role", ["desk", "guard", "patrol", "unit", "sensor", "admin"])
async def test_every_other_role_is_refused(service: Service, role: str) -> None:
    answer = await service.http.get(PATH, params=NOVEMBER, headers=service.callers[role].headers)
    assert answer.status_code == 403, answer.text
    assert "may not read reports" in answer.json()["error"]


async def test_no_token_and_a_bad_token_are_401(service: Service) -> None:
    bare = await service.http.get(PATH, params=NOVEMBER)
    assert bare.status_code == 401
    assert bare.headers["WWW-Authenticate"] == "Bearer"
    forged = await service.http.get(
        PATH, params=NOVEMBER, headers={"Authorization": "Bearer dsp_not-a-token"}
    )
    assert forged.status_code == 401


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"from": "2026-13-01", "to": "2026-12-01"}, "from", "is not a date"),
        ({"from": "2026-12-01", "to": "2026-11-01"}, "to", "must be after from"),
        ({"from": "2000-01-01", "to": "2026-12-01"}, "to", "at most 3660 days"),
    ],
)
async def test_a_bad_period_names_the_field(
    service: Service, params: dict[str, str], field: str, words: str
) -> None:
    answer = await service.http.get(
        PATH, params=params, headers=service.callers["commander"].headers
    )
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["fields"]
    assert problem["field"] == field
    assert words in problem["message"]


async def test_a_refused_role_learns_nothing_of_a_bad_period(service: Service) -> None:
    # The role is checked first: a desk gets 403, not a 422 that would show it got further.
    answer = await service.http.get(
        PATH, params={"from": "garbage"}, headers=service.callers["desk"].headers
    )
    assert answer.status_code == 403


async def test_the_endpoint_is_in_the_openapi_document(service: Service) -> None:
    document = (await service.http.get("/openapi.json")).json()
    operation = document["paths"][PATH]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"from", "to"}
    assert operation["security"] == [{"HTTPBearer": []}]
    assert set(operation["responses"]) >= {"200", "401", "403", "422", "503"}
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Report"}
    assert "compliance" in document["components"]["schemas"]["Report"]["properties"]
