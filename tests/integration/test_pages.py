"""The pages in a real browser against the whole system as `dispatch run` starts it.

Debian's headless Chromium (/usr/bin/chromium) driven by Playwright opens the desk page, the
unit page and the commander board that the push gateway serves, on a system of real
processes (stream workers, intake, the gateway, the reconciler; Kafka and PostgreSQL of its
own: tests/integration/faults/system.py). The tokens are the simulator's demo principals'.
Each test saves a screenshot of every page it drove into the artifacts directory
(DISPATCH_TEST_ARTIFACTS, default build/test-artifacts/pages); docs/screens.md shows them.

Units: only a unit whose page has reported a position is available to the route stage, so
each test puts the units it needs on duty at a place of its choosing and takes them off duty
at its end, and the incidents of one test never go to another test's unit.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from cli.run_command import page_links
from consumers.db.pool import connection
from consumers.push.pages import DEFAULT_ROOT
from dispatch.events import (
    INCIDENTS_STATE,
    IncidentState,
    IncidentStateChange,
    InvalidEvent,
    decode,
)
from dispatch.zone import Zone, default_zone_path, load_zone
from infra.stack import postgres_url
from simulator.principals import DemoPrincipals, ensure_demo_principals
from tests.integration.faults.system import System, running_system
from tests.integration.faults.topics import records_to_end

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("DISPATCH_TEST_ARTIFACTS", "build/test-artifacts/pages"))
# Hang guards for one awaited change on a page, not performance bounds: a whole system of
# processes shares two cores with the browser.
SEEN_MS = 60_000
RESTART_MS = 120_000
ANY = re.compile(".+")
THEFT = "仓库门口有人偷电动车 / someone is stealing e-bikes at the warehouse gate"


def near(zone: Zone, place_id: str, north_m: float) -> dict[str, float]:
    """Return a geolocation north_m metres north of a zone place."""
    place = zone.place(place_id)
    return {"latitude": place.position.lat + north_m / 111_320, "longitude": place.position.lon}


class Demo:
    """The running system, its zone, the demo tokens and a browser."""

    def __init__(
        self, system: System, zone: Zone, principals: DemoPrincipals, browser: Browser
    ) -> None:
        self.system = system
        self.zone = zone
        self.principals = principals
        self.browser = browser
        settings = system.settings
        self.pages_url = f"http://{settings.gateway_host}:{settings.push_port}"

    def unit_token(self, unit_id: str) -> str:
        """Return the demo token of a unit."""
        return self.principals.units[unit_id].token.get_secret_value()

    def desk_token(self, enterprise_id: str) -> str:
        """Return the demo token of an enterprise's desk."""
        return self.principals.desks[enterprise_id].token.get_secret_value()

    @property
    def commander_token(self) -> str:
        """Return the demo commander's token."""
        return self.principals.commander.token.get_secret_value()

    @asynccontextmanager
    async def page(
        self,
        path: str,
        token: str,
        *,
        mobile: bool = False,
        where: dict[str, float] | None = None,
        width: int = 1600,
        height: int = 900,
    ) -> AsyncIterator[Page]:
        """Open a page of the gateway with its token in the fragment, in a context of its own."""
        options: dict[str, object] = {"locale": "zh-CN", "timezone_id": "Asia/Shanghai"}
        if mobile:
            options |= {"viewport": {"width": 390, "height": 844}, "is_mobile": True}
            options |= {"has_touch": True, "device_scale_factor": 2}
        else:
            options |= {"viewport": {"width": width, "height": height}}
        if where is not None:
            options |= {"geolocation": where, "permissions": ["geolocation"]}
        context: BrowserContext = await self.browser.new_context(**options)  # type: ignore[arg-type]  # the options of new_context, built above
        errors: list[str] = []
        try:
            page = await context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{self.pages_url}{path}#token={token}")
            yield page
        finally:
            await context.close()
        # A script error on a page (a CSP refusal among them) is a failure of the page.
        assert errors == []


async def screenshot(page: Page, name: str) -> None:
    """Save a screenshot of the page as a test artifact."""
    # Playwright makes the directory.
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def check_prerequisites() -> None:
    """Fail at once, saying what to do, when the pages are not built or Chromium is missing."""
    assert (DEFAULT_ROOT / "board.html").is_file(), (
        f"the pages are not built in {DEFAULT_ROOT}: `make test` builds them "
        "(or run `npm ci && npm run build` in web/)"
    )
    assert CHROMIUM.is_file(), "Debian's chromium is missing: `apt-get install -y chromium`"


@pytest.fixture(scope="module")
async def demo() -> AsyncIterator[Demo]:
    """Start the whole system and a browser; make the demo principals' tokens."""
    check_prerequisites()
    async with running_system() as system:
        zone = load_zone(system.settings.zone_file or default_zone_path())
        pool = await asyncpg.create_pool(postgres_url(system.settings), min_size=1, max_size=2)
        try:
            async with connection(pool) as conn:
                principals = await ensure_demo_principals(conn, zone)
        finally:
            await pool.close()
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
            try:
                yield Demo(system, zone, principals, browser)
            finally:
                await browser.close()


async def on_duty(unit: Page, board: Page, unit_id: str, status: str = "available") -> None:
    """Wait until the unit page is connected and the board shows the unit in a status."""
    await expect(unit.locator("#conn.conn-online")).to_be_visible(timeout=SEEN_MS)
    row = board.locator(f'#units [data-unit="{unit_id}"][data-status="{status}"]')
    await expect(row).to_have_count(1, timeout=SEEN_MS)


async def off_duty(unit: Page, board: Page, unit_id: str) -> None:
    """Take a unit off duty on its page; wait until the board shows it so."""
    await unit.locator("#duty").click()
    row = board.locator(f'#units [data-unit="{unit_id}"][data-status="off_duty"]')
    await expect(row).to_have_count(1, timeout=SEEN_MS)


async def raise_on_desk(desk: Page, kind: str, spot: str) -> str:
    """Raise an alarm in three taps on the desk page; return the receipt's alarm id."""
    await desk.locator(f'[data-kind="{kind}"]').click()
    await desk.locator(f'[data-spot="{spot}"]').click()
    await desk.locator("#submit").click()
    receipt = desk.locator("#receipt-id")
    await expect(receipt).to_be_visible(timeout=SEEN_MS)
    return (await receipt.inner_text()).strip()


async def test_the_links_dispatch_run_prints_open_each_page_signed_in(demo: Demo) -> None:
    links = await page_links(demo.system.settings)
    assert list(links) == ["commander board", "unit page", "desk page"]
    for url in links.values():
        path, _, fragment = url.removeprefix(demo.pages_url).partition("#")
        assert fragment.startswith("token=dsp_")
        context = await demo.browser.new_context()
        try:
            page = await context.new_page()
            response = await page.goto(url)
            assert response is not None
            # Every page answer carries the policy: scripts and styles from the gateway only.
            policy = response.headers["content-security-policy"]
            assert "script-src 'self'" in policy
            assert "style-src 'self'" in policy
            assert "unsafe-inline" not in policy
            # The gateway never saw the token (a fragment stays in the browser) nor echoes it.
            token = fragment.removeprefix("token=")
            assert all(token not in v for v in (await response.all_headers()).values())
            assert token not in await response.text()
            await expect(page.locator("#conn.conn-online")).to_be_visible(timeout=SEEN_MS)
            await expect(page.locator("#signin")).to_be_hidden()
            assert page.url == demo.pages_url + path
        finally:
            await context.close()
    # A page without a token asks for one, and a wrong one is refused.
    context = await demo.browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{demo.pages_url}/board")
        await expect(page.locator("#signin")).to_be_visible()
        await page.locator("#signin-token").fill("dsp_" + "x" * 43)
        await page.keyboard.press("Enter")
        await expect(page.locator("#signin-error")).not_to_be_empty(timeout=SEEN_MS)
        await screenshot(page, "board-sign-in")
    finally:
        await context.close()


async def test_a_desks_alarm_reaches_the_unit_page_and_the_board_sees_it_accepted(
    demo: Demo,
) -> None:
    unit_id, site = "cd-patrol-2", "ent-hengtong"
    where = near(demo.zone, site, north_m=300)
    async with (
        demo.page("/board", demo.commander_token) as board,
        demo.page("/unit", demo.unit_token(unit_id), mobile=True, where=where) as unit,
        demo.page("/desk", demo.desk_token(site), width=1280, height=860) as desk,
    ):
        # The token left the address bar at once, and the page holds it for this tab only.
        assert "token" not in unit.url
        assert await unit.evaluate("localStorage.length") == 0
        await on_duty(unit, board, unit_id)

        alarm_id = await raise_on_desk(desk, "theft", "warehouse")

        # The job arrives with its banner, which stays until answered.
        banner = unit.locator("#banner")
        await expect(banner).to_be_visible(timeout=SEEN_MS)
        card = unit.locator("article.job")
        await expect(card).to_have_count(1)
        incident_id = await card.get_attribute("data-incident")
        assert incident_id is not None
        await screenshot(unit, "unit-job-banner")
        await banner.locator('[data-action="accept"]').click()
        await expect(banner).to_be_hidden(timeout=SEEN_MS)
        await expect(card).to_have_attribute("data-state", "accepted", timeout=SEEN_MS)

        # The board: the incident accepted, its acceptance timer stopped, the unit on the map
        # where its phone is.
        row = board.locator(f'#queue [data-incident="{incident_id}"]')
        await expect(row).to_have_attribute("data-state", "accepted", timeout=SEEN_MS)
        await expect(row.locator('[data-timer="accept"]')).to_have_attribute("data-stopped", "true")
        await expect(row.locator(f'[data-unit="{unit_id}"]')).to_have_attribute(
            "data-party-state", "accepted"
        )
        marker = board.locator(f'path.unit-marker[data-unit="{unit_id}"]')
        await expect(marker).to_have_count(1, timeout=SEEN_MS)
        assert float(await marker.get_attribute("data-lat") or "nan") == pytest.approx(
            where["latitude"], abs=1e-7
        )
        assert float(await marker.get_attribute("data-lon") or "nan") == pytest.approx(
            where["longitude"], abs=1e-7
        )
        await expect(board.locator(f'#units [data-unit="{unit_id}"]')).to_have_attribute(
            "data-status", "assigned", timeout=SEEN_MS
        )

        # The desk follows its own alarm: who is coming.
        own = desk.locator(f'#mine [data-alarm="{alarm_id}"]')
        await expect(own).to_have_attribute("data-state", "accepted", timeout=SEEN_MS)
        await expect(own.locator(f'[data-unit="{unit_id}"]')).to_have_count(1)
        await screenshot(board, "board-accepted")
        await screenshot(desk, "desk-followed")

        # The timeline on a click, from the record or from what the board saw.
        await row.click()
        timeline = board.locator("#timeline-dialog")
        await expect(timeline).to_be_visible()
        await expect(timeline.locator("li").first).to_be_visible(timeout=SEEN_MS)
        await board.keyboard.press("Escape")
        await expect(timeline).to_be_hidden()

        # English on one tap.
        await unit.locator("#lang").click()
        await expect(unit.locator('[data-action="en_route"]')).to_have_text("En route")
        await screenshot(unit, "unit-accepted-en")
        await off_duty(unit, board, unit_id)


async def test_a_unit_page_survives_a_gateway_restart_and_shows_each_job_once(
    demo: Demo,
) -> None:
    unit_id, site = "cd-patrol-4", "ent-kangrui"
    where = near(demo.zone, site, north_m=200)
    desk_headers = {"Authorization": f"Bearer {demo.desk_token(site)}"}
    async with (
        demo.page("/board", demo.commander_token) as board,
        demo.page("/unit", demo.unit_token(unit_id), mobile=True, where=where) as unit,
        httpx.AsyncClient(base_url=demo.system.intake_url, timeout=60.0) as http,
    ):
        await on_duty(unit, board, unit_id)
        first = await raise_alarm(http, desk_headers)
        cards = unit.locator("article.job")
        await expect(cards).to_have_count(1, timeout=SEEN_MS)
        # The whole job: accept, on the way, there, done; the unit is available again.
        for action in ("accept", "en_route", "on_scene", "resolved"):
            await unit.locator(
                f'[data-seq="1"] [data-action="{action}"], #banner [data-action="{action}"]'
            ).first.click()
            done = {"accept": "accepted"}.get(action, action)
            await expect(cards.first).to_have_attribute("data-state", done, timeout=SEEN_MS)
        await expect(board.locator(f'#units [data-unit="{unit_id}"]')).to_have_attribute(
            "data-status", "available", timeout=SEEN_MS
        )

        # The gateway goes away; meanwhile the route stage sends the unit another job.
        since = demo.system.signal("push gateway", signal.SIGTERM)
        await expect(unit.locator("#conn.conn-online")).to_be_hidden(timeout=SEEN_MS)
        second = await raise_alarm(http, desk_headers)
        await dispatched_to(demo.system, second, unit_id)
        await demo.system.until_restarted("push gateway", since)
        await demo.system.until_ready()

        # The page came back by itself and caught up: the new job once, the old one not again.
        await expect(unit.locator("#conn.conn-online")).to_be_visible(timeout=RESTART_MS)
        await expect(cards).to_have_count(2, timeout=SEEN_MS)
        await expect(unit.locator("#banner")).to_be_visible()
        assert await unit.locator('article.job[data-seq="1"]').get_attribute("data-state") == (
            "resolved"
        )
        assert await unit.locator('article.job[data-seq="2"]').count() == 1
        await screenshot(unit, "unit-after-restart")
        # A reload of the tab resumes from the same seq: still each job once, no new banner.
        await unit.reload()
        await expect(unit.locator("#conn.conn-online")).to_be_visible(timeout=SEEN_MS)
        await expect(cards).to_have_count(2)
        assert sorted([await c.get_attribute("data-seq") or "" for c in await cards.all()]) == [
            "1",
            "2",
        ]
        await unit.locator('#banner [data-action="accept"]').click()
        await expect(unit.locator("#banner")).to_be_hidden(timeout=SEEN_MS)
        assert first != second
        await off_duty(unit, board, unit_id)


async def test_a_desk_never_sees_another_enterprises_alarm(demo: Demo) -> None:
    mine, theirs = "ent-hengtong", "ent-qixing"
    async with (
        demo.page("/desk", demo.desk_token(mine), width=1280, height=860) as desk,
        demo.page("/desk", demo.desk_token(theirs), width=1280, height=860) as other,
    ):
        await expect(desk.locator("#conn.conn-online")).to_be_visible(timeout=SEEN_MS)
        their_alarm = await raise_on_desk(other, "fight", "gate")
        # Whatever the route stage decided, their page shows the incident of their alarm.
        await expect(other.locator(f'#mine [data-alarm="{their_alarm}"]')).to_have_attribute(
            "data-incident", ANY, timeout=SEEN_MS
        )
        their_incident = await other.locator(f'#mine [data-alarm="{their_alarm}"]').get_attribute(
            "data-incident"
        )
        # Our own alarm raised after theirs reaches our page: the channel is live past theirs.
        my_alarm = await raise_on_desk(desk, "intrusion", "gate")
        await expect(desk.locator(f'#mine [data-alarm="{my_alarm}"]')).to_have_attribute(
            "data-incident", ANY, timeout=SEEN_MS
        )
        assert await desk.locator(f'[data-alarm="{their_alarm}"]').count() == 0
        assert await desk.locator(f'[data-incident="{their_incident}"]').count() == 0
        assert their_alarm not in await desk.content()
        await screenshot(desk, "desk-own-only")

        # Editing a request does not help: our token asks for their alarm and their place.
        intake = demo.system.intake_url
        answers = await desk.evaluate(
            """async ([intake, alarm, incident, place]) => {
                const token = sessionStorage.getItem("dispatch.token");
                const headers = {
                    Authorization: `Bearer ${token}`, "Content-Type": "application/json"};
                const read = await fetch(`${intake}/v1/alarms/${alarm}`, {headers});
                const incidentRead = await fetch(`${intake}/v1/incidents/${incident}`, {headers});
                const raise = await fetch(`${intake}/v1/alarms`, {method: "POST", headers,
                    body: JSON.stringify({text: "test", place_id: place})});
                return [read.status, incidentRead.status, raise.status];
            }""",
            [intake, their_alarm, their_incident, theirs],
        )
        assert answers == [404, 404, 403]


async def raise_alarm(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """Raise a theft as a desk over HTTP; return its alarm id."""
    body = {"text": THEFT, "idempotency_key": f"pages-{uuid.uuid4().hex}"}
    response = await http.post("/v1/alarms", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["alarm_id"])


async def dispatched_to(system: System, alarm_id: str, unit_id: str) -> IncidentStateChange:
    """Read incidents.state until the incident of an alarm is dispatched to a unit."""
    consumer = AIOKafkaConsumer(bootstrap_servers=system.settings.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(INCIDENTS_STATE.name, p) for p in range(system.settings.kafka_partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async with asyncio.timeout(SEEN_MS / 1000):
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        try:
                            change = decode(IncidentStateChange, record.value or b"")
                        except InvalidEvent:
                            continue
                        if str(change.first_alarm_id) != alarm_id:
                            continue
                        if change.state is IncidentState.DISPATCHED and any(
                            p.unit_id == unit_id for p in change.parties
                        ):
                            return change
    finally:
        await consumer.stop()


async def test_a_board_opened_in_a_busy_minute_shows_every_open_incident(demo: Demo) -> None:
    sites = [p.id for p in demo.zone.places if p.type.value == "enterprise"][:20]
    async with httpx.AsyncClient(base_url=demo.system.intake_url, timeout=60.0) as http:

        async def burst(chosen: list[str]) -> list[str]:
            return list(
                await asyncio.gather(
                    *(
                        raise_alarm(http, {"Authorization": f"Bearer {demo.desk_token(site)}"})
                        for site in chosen
                    )
                )
            )

        before = await burst(sites[:10])
        async with demo.page("/board", demo.commander_token) as board:
            # The rest of the minute's alarms come while the board fetches its picture.
            after = await burst(sites[10:])
            await decided(demo.system, before + after)
            expected = await open_incidents(demo.system)
            rows = board.locator("#queue li.incident")
            await expect(rows).to_have_count(len(expected), timeout=SEEN_MS)
            shown = {await r.get_attribute("data-incident") for r in await rows.all()}
            assert shown == expected
            # Those that need a decision come first.
            states = [await r.get_attribute("data-state") for r in await rows.all()]
            escalated = [s == "escalated" for s in states]
            assert escalated == sorted(escalated, reverse=True)
            await screenshot(board, "board-busy-minute")


async def read_changes(system: System) -> dict[str, IncidentStateChange]:
    """Return the latest change of every incident on incidents.state, read to its end."""
    latest: dict[str, IncidentStateChange] = {}
    settings = system.settings
    topics = [INCIDENTS_STATE.name]
    async for record in records_to_end(
        settings.bootstrap_servers, topics, settings.kafka_partitions
    ):
        try:
            change = decode(IncidentStateChange, record.value or b"")
        except InvalidEvent:
            continue
        known = latest.get(str(change.incident_id))
        if known is None or (change.at, str(change.event_id)) >= (known.at, str(known.event_id)):
            latest[str(change.incident_id)] = change
    return latest


DECIDED = {IncidentState.DISPATCHED, IncidentState.ESCALATED, IncidentState.MERGED}


async def decided(system: System, alarm_ids: list[str]) -> None:
    """Wait until the route stage has decided about the incident of every alarm."""
    wanted = set(alarm_ids)
    async with asyncio.timeout(SEEN_MS / 1000):
        while True:
            changes = await read_changes(system)
            done = {str(c.first_alarm_id) for c in changes.values() if c.state in DECIDED} | {
                str(a) for c in changes.values() for a in c.merged_alarm_ids
            }
            if wanted <= done:
                return
            await asyncio.sleep(0.5)  # polling a topic read to its end: there is no event


async def open_incidents(system: System) -> set[str]:
    """Return the ids of every open incident, from incidents.state."""
    # `merged` is said of the incident another alarm joined, which stays open.
    closed = {IncidentState.RESOLVED, IncidentState.CANCELLED}
    return {i for i, c in (await read_changes(system)).items() if c.state not in closed}
