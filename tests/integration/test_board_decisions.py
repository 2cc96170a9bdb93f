"""The commander board's decisions beyond commands, in a real browser on the whole system.

As test_pages.py (whose fixture and helpers these tests share, on a system of this module's
own): today's figures hold urban grids to 5 minutes and suburban grids to 10; the commander
records a unit's answer given by radio; the commander places an alarm the zone could not with
a click on the map, and it is routed. Screenshots go to the artifacts directory
(docs/screens.md shows them).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from playwright.async_api import Page, expect

from consumers.sink.writer import SinkRecord, write_records
from dispatch.events import (
    INCIDENTS_STATE,
    Category,
    IncidentState,
    IncidentStateChange,
    IncidentTiming,
    Position,
    Priority,
)
from dispatch.triage import provisional_incident_id
from dispatch.zone import GridArea, Zone
from dispatch.zone.geo import ring_centroid
from infra.stack import postgres_url
from tests.integration.test_pages import (
    SEEN_MS,
    Demo,
    near,
    off_duty,
    on_duty,
    raise_alarm,
    screenshot,
)
from tests.integration.test_pages import demo as demo

FIGHT = "有人打架,快来人 / a fight, come quick"
NORM_S = {GridArea.URBAN: 300, GridArea.SUBURBAN: 600}


@asynccontextmanager
async def record(demo: Demo) -> AsyncIterator[asyncpg.Connection]:
    """Connect to the system's PostgreSQL (the record the sink writes)."""
    conn = await asyncpg.connect(postgres_url(demo.system.settings))
    try:
        yield conn
    finally:
        await conn.close()


def noon_zone(now: datetime) -> str:
    """Return a fixed-offset time zone in which it is now about noon.

    The board counts today's incidents from the browser's local midnight: at noon, incidents
    of the last hour are today's whatever the hour of the run.
    """
    offset = (12 - now.hour) % 24
    offset = offset - 24 if offset > 14 else offset
    # The IANA Etc zones count the other way: Etc/GMT-8 is eight hours ahead of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def resolved(
    zone: Zone, grid_id: str, *, arrival_s: float, received: datetime
) -> IncidentStateChange:
    """Return the last change of an incident resolved in a grid, arrived after arrival_s."""
    lat, lon = ring_centroid(zone.grid(grid_id).polygon)
    on_scene = received + timedelta(seconds=arrival_s)
    return IncidentStateChange(
        event_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        state=IncidentState.RESOLVED,
        previous_state=IncidentState.ON_SCENE,
        actor="system",
        at=on_scene + timedelta(minutes=5),
        priority=Priority.P3,
        category=Category.THEFT,
        position=Position(lat=lat, lon=lon),
        timing=IncidentTiming(
            received_at=received,
            classified_at=received + timedelta(seconds=1),
            dispatched_at=received + timedelta(seconds=20),
            on_scene_at=on_scene,
            resolved_at=on_scene + timedelta(minutes=5),
        ),
    )


async def expected_figures(demo: Demo, since: datetime) -> dict[str, tuple[int, int]]:
    """Work today's figures out from the read API, each grid by its own norm."""
    headers = {"Authorization": f"Bearer {demo.commander_token}"}
    found: list[dict[str, object]] = []
    async with httpx.AsyncClient(base_url=demo.system.intake_url, timeout=60.0) as http:
        cursor = None
        while True:
            params = {"from": since.isoformat(), "limit": "500"} | (
                {"cursor": cursor} if cursor else {}
            )
            body = (await http.get("/v1/incidents", params=params, headers=headers)).json()
            found += body["incidents"]
            if not (cursor := body["next_cursor"]):
                break
    figures = {"processing": (0, 0), "arrival_urban": (0, 0), "arrival_suburban": (0, 0)}

    def count(name: str, start: object, end: object, limit_s: float) -> None:
        if not (isinstance(start, str) and isinstance(end, str)):
            return
        took = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
        within, of = figures[name]
        figures[name] = (within + (took <= limit_s), of + 1)

    for incident in found:
        count("processing", incident["received_at"], incident["dispatched_at"], 60)
        grid_id = incident["grid_id"]
        if isinstance(grid_id, str):
            area = demo.zone.grid(grid_id).area
            name = f"arrival_{area.value}"
            count(name, incident["received_at"], incident["on_scene_at"], NORM_S[area])
    return figures


async def shown_figures(board: Page) -> dict[str, tuple[int, int]]:
    """Return the figures the board shows: (within, of) by name."""
    shown = {}
    for figure in await board.locator("#figures [data-figure]").all():
        name = await figure.get_attribute("data-figure") or ""
        within = int(await figure.get_attribute("data-within") or "-1")
        shown[name] = (within, int(await figure.get_attribute("data-of") or "-1"))
    return shown


async def test_todays_arrival_figures_hold_each_grid_to_its_own_norm(demo: Demo) -> None:
    now = datetime.now(UTC)
    tz = noon_zone(now)
    midnight = now.astimezone(ZoneInfo(tz)).replace(hour=0, minute=0, second=0, microsecond=0)
    zone = demo.zone
    urban = next(g.id for g in zone.grids if g.area is GridArea.URBAN)
    suburban = next(g.id for g in zone.grids if g.area is GridArea.SUBURBAN)
    received = now - timedelta(minutes=50)
    # Seven minutes is late in an urban grid and in time in a suburban one.
    changes = [
        resolved(zone, urban, arrival_s=180, received=received),
        resolved(zone, urban, arrival_s=420, received=received),
        resolved(zone, suburban, arrival_s=420, received=received),
        resolved(zone, suburban, arrival_s=720, received=received),
    ]
    async with record(demo) as conn:
        await write_records(conn, [SinkRecord(INCIDENTS_STATE.name, c) for c in changes], zone=zone)
    expected = await expected_figures(demo, midnight)
    assert expected["arrival_urban"][0] < expected["arrival_urban"][1]
    assert expected["arrival_suburban"][0] >= 1

    context = await demo.browser.new_context(
        locale="zh-CN", timezone_id=tz, viewport={"width": 1600, "height": 900}
    )
    try:
        board = await context.new_page()
        await board.goto(f"{demo.pages_url}/board#token={demo.commander_token}")
        figures = board.locator('#figures [data-figure="arrival_suburban"]')
        await expect(figures).to_have_attribute(
            "data-of", str(expected["arrival_suburban"][1]), timeout=SEEN_MS
        )
        assert await shown_figures(board) == expected
        await expect(
            board.locator('#figures [data-figure="arrival_urban"] .figure-label')
        ).to_have_text("城区到场 ≤ 5 分钟")
        await screenshot(board, "board-figures-by-area")
    finally:
        await context.close()


async def test_the_board_records_a_units_answer_given_by_radio(demo: Demo) -> None:
    unit_id, site = "cd-patrol-3", "ent-hengtong"
    where = near(demo.zone, site, north_m=250)
    desk_headers = {"Authorization": f"Bearer {demo.desk_token(site)}"}
    async with (
        demo.page("/board", demo.commander_token) as board,
        demo.page("/unit", demo.unit_token(unit_id), mobile=True, where=where) as unit,
        httpx.AsyncClient(base_url=demo.system.intake_url, timeout=60.0) as http,
    ):
        await on_duty(unit, board, unit_id)
        await raise_alarm(http, desk_headers)
        # The job reaches the phone, which shows it; its crew answers by radio instead.
        card = unit.locator("article.job")
        await expect(card).to_have_count(1, timeout=SEEN_MS)
        incident_id = await card.get_attribute("data-incident")
        assert incident_id is not None
        row = board.locator(f'#queue [data-incident="{incident_id}"]')
        party = row.locator(f'[data-unit="{unit_id}"]')
        await expect(party).to_have_attribute("data-party-state", "dispatched", timeout=SEEN_MS)

        await row.locator('[data-action="answer"]').click()
        dialog = board.locator("#action-dialog")
        await expect(dialog).to_be_visible()
        assert await board.locator("#action-assignment_id option").count() == 1
        await board.locator("#action-answer").select_option("accept")
        await board.locator("#action-reason").fill("电台确认 / confirmed by radio")
        await screenshot(board, "board-radio-answer")
        await board.locator("#action-confirm").click()

        # Applied as the unit's own answer would be, with the commander as the one who acted.
        await expect(row).to_have_attribute("data-state", "accepted", timeout=SEEN_MS)
        await expect(party).to_have_attribute("data-party-state", "accepted")
        await expect(row.locator('[data-timer="accept"]')).to_have_attribute("data-stopped", "true")
        applied = board.locator(f'#outcomes .outcome-applied[data-incident="{incident_id}"]')
        await expect(applied.first).to_be_visible(timeout=SEEN_MS)
        await screenshot(board, "board-radio-answer-applied")
        async with record(demo) as conn:
            audited = await conn.fetch(
                "SELECT actor, detail->>'action' AS action FROM audit_log "
                "WHERE subject = $1 AND action = 'assignment.respond'",
                f"incident:{incident_id}",
            )
        assert [(r["actor"], r["action"]) for r in audited] == [("commander-duty", "accept")]

        # The phone comes back: its own accept is the same answer, recorded once.
        await unit.locator('#banner [data-action="accept"]').click()
        await expect(card).to_have_attribute("data-state", "accepted", timeout=SEEN_MS)
        async with record(demo) as conn:
            again = await conn.fetchval(
                "SELECT count(*) FROM audit_log "
                "WHERE subject = $1 AND action = 'assignment.respond'",
                f"incident:{incident_id}",
            )
        assert again == 1
        await off_duty(unit, board, unit_id)


async def test_the_commander_places_an_alarm_the_zone_could_not_with_a_click(demo: Demo) -> None:
    unit_id = "cd-patrol-1"
    # Somewhere in the middle of the zone, where the board's map is centred.
    middle = {"latitude": 31.715, "longitude": 113.42}
    hotline = {"Authorization": f"Bearer {demo.principals.hotline.token.get_secret_value()}"}
    async with (
        demo.page("/board", demo.commander_token) as board,
        demo.page("/unit", demo.unit_token(unit_id), mobile=True, where=middle) as unit,
        httpx.AsyncClient(base_url=demo.system.intake_url, timeout=60.0) as http,
    ):
        await on_duty(unit, board, unit_id)
        # A call with no place the zone knows: the board shows it escalated, place unknown.
        answer = await http.post(
            "/v1/alarms", json={"text": FIGHT, "reporter_phone": "13800000000"}, headers=hotline
        )
        assert answer.status_code == 202, answer.text
        incident_id = str(provisional_incident_id(uuid.UUID(answer.json()["alarm_id"])))
        row = board.locator(f'#queue [data-incident="{incident_id}"]')
        await expect(row).to_have_attribute("data-state", "escalated", timeout=SEEN_MS)
        await expect(row.locator(".place")).to_have_text("?")

        await row.locator('[data-action="place"]').click()
        await expect(board.locator("#place-hint")).to_be_visible()
        await board.locator("#map").click()
        dialog = board.locator("#place-dialog")
        await expect(dialog).to_be_visible()
        lat = float(await board.locator("#place-lat").input_value())
        lon = float(await board.locator("#place-lon").input_value())
        await expect(board.locator("#place-where")).not_to_be_empty()
        await screenshot(board, "board-place-alarm")
        await board.locator("#place-confirm").click()

        # Routed as the incident the board showed, from the place clicked: the unit is sent.
        await expect(row).to_have_attribute("data-state", "dispatched", timeout=SEEN_MS)
        marker = board.locator(f'path.incident-marker[data-incident="{incident_id}"]')
        await expect(marker).to_have_count(1, timeout=SEEN_MS)
        assert float(await marker.get_attribute("data-lat") or "nan") == pytest.approx(
            lat, abs=1e-9
        )
        assert float(await marker.get_attribute("data-lon") or "nan") == pytest.approx(
            lon, abs=1e-9
        )
        placed = board.locator(f'#outcomes .outcome-applied[data-incident="{incident_id}"]')
        await expect(placed.first).to_be_visible(timeout=SEEN_MS)
        job = unit.locator(f'article.job[data-incident="{incident_id}"]')
        await expect(job).to_have_count(1, timeout=SEEN_MS)
        await screenshot(board, "board-placed-dispatched")
        await unit.locator('#banner [data-action="accept"]').click()
        await expect(job).to_have_attribute("data-state", "accepted", timeout=SEEN_MS)
        await off_duty(unit, board, unit_id)
