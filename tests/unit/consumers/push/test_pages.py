"""The pages' side of the gateway without a network: which path gets what, the policy every
answer carries, and what of the zone each role may know."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request

from consumers.auth import AuthenticationFailed, Principal, Role
from consumers.push.pages import Pages, content_security_policy, origin_of, zone_document
from consumers.push.sessions import RateLimiter
from dispatch.settings import Settings
from dispatch.zone import default_zone_path, load_zone

ZONE = load_zone(default_zone_path())
COMMANDER = Principal(id="commander-1", role=Role.COMMANDER, name="duty commander")
DESK = Principal(id="desk-ht", role=Role.DESK, enterprise_id="ent-hengtong", name="desk")
PATROL = Principal(id="cd-patrol-2", role=Role.PATROL, unit_id="cd-patrol-2", name="car 2")
SECRET = "dsp_" + "a" * 43


class Remote:
    """What Pages reads of a connection: its peer's address."""

    remote_address = ("127.0.0.1", 50000)


def connection() -> ServerConnection:
    return cast(ServerConnection, Remote())


def request(path: str, **headers: str) -> Request:
    return Request(path, Headers(headers))


def built(root: Path) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "board.html").write_text("<!doctype html><title>board</title>", encoding="utf-8")
    (root / "assets" / "board.js").write_text("console.log(1)", encoding="utf-8")
    return root


def pages(root: Path, settings: Settings | None = None) -> Pages:
    async def authenticate(secret: str) -> Principal:
        if secret != SECRET:
            raise AuthenticationFailed("unknown token")
        return DESK

    return Pages(
        settings or Settings(),
        zone=ZONE,
        authenticate=authenticate,
        failed_auth=RateLimiter(60),
        can_connect=lambda _: True,
        root=root,
    )


async def test_a_page_and_its_script_are_served_with_the_policy(tmp_path: Path) -> None:
    served = pages(built(tmp_path))
    page = await served.answer(connection(), request("/board"))
    assert page is not None
    assert (page.status_code, page.headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert page.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    script = await served.answer(connection(), request("/assets/board.js"))
    assert script is not None
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert script.body == b"console.log(1)"


async def test_only_what_the_build_made_is_served(tmp_path: Path) -> None:
    served = pages(built(tmp_path))
    missing = await served.answer(connection(), request("/assets/../../etc/passwd"))
    assert missing is not None
    assert missing.status_code == 404
    # Not a page path: the websocket handshake goes on (any path is the websocket).
    assert await served.answer(connection(), request("/anything")) is None
    upgrade = request("/board", Upgrade="websocket")
    assert await served.answer(connection(), upgrade) is None


async def test_without_a_build_the_pages_say_how_to_build_them(tmp_path: Path) -> None:
    page = await pages(tmp_path / "none").answer(connection(), request("/unit"))
    assert page is not None
    assert page.status_code == 503
    assert b"npm run build" in page.body


async def test_the_zone_needs_a_token_and_never_echoes_it(tmp_path: Path) -> None:
    served = pages(built(tmp_path))
    refused = await served.answer(connection(), request("/v1/zone"))
    assert refused is not None
    assert (refused.status_code, refused.headers["WWW-Authenticate"]) == (401, "Bearer")
    wrong = await served.answer(connection(), request("/v1/zone", Authorization="Bearer dsp_x"))
    assert wrong is not None
    assert wrong.status_code == 401
    zone = await served.answer(connection(), request("/v1/zone", Authorization=f"Bearer {SECRET}"))
    assert zone is not None
    assert zone.status_code == 200
    assert SECRET.encode() not in zone.body
    assert all(SECRET not in value for _, value in zone.headers.raw_items())


def document(principal: Principal) -> Any:
    """Return the zone document as a page reads it: JSON."""
    return json.loads(json.dumps(zone_document(ZONE, principal)))


def test_each_role_knows_the_map_and_only_its_own_units() -> None:
    assert len(document(COMMANDER)["units"]) == len(ZONE.units)
    assert [u["id"] for u in document(PATROL)["units"]] == ["cd-patrol-2"]
    desk = document(DESK)
    assert desk["units"] == []
    assert len(desk["places"]) == len(ZONE.places)
    assert len(desk["grids"]) == len(ZONE.grids)
    assert desk["accept_timeout_s"] == {"P1": 30.0, "P2": 60.0, "P3": 120.0, "P4": 300.0}


def test_the_grids_tell_their_arrival_norm() -> None:
    areas = {g["id"]: g["area"] for g in document(COMMANDER)["grids"]}
    assert areas == {g.id: g.area.value for g in ZONE.grids}
    assert set(areas.values()) == {"urban", "suburban"}


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://intake.example.cn/api", "https://intake.example.cn"),
        ("https://{s}.tiles.example.cn/{z}/{x}/{y}.png", "https://*.tiles.example.cn"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


def test_the_policy_allows_intake_and_the_tiles_and_nothing_inline() -> None:
    settings = Settings(
        pages_intake_url="https://intake.example.cn",
        map_tile_url="https://tiles.example.cn/{z}/{x}/{y}.png",
    )
    policy = content_security_policy(settings)
    assert "connect-src 'self' https://intake.example.cn" in policy
    assert "img-src 'self' data: https://tiles.example.cn" in policy
    assert "default-src 'none'" in policy
    assert "unsafe" not in policy
