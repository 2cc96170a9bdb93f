"""The web pages on the push gateway's HTTP side: the commander board, the unit page, the desk
page, their assets, their settings and the zone (docs/pages.md).

The pages are built from web/ by `npm run build` (make run and make test do it) into web/dist,
read into memory when the gateway starts and served from there, so a request can only ever
name a file that the build made. Every answer carries a strict Content-Security-Policy: scripts
and styles only from the gateway itself (no inline script or style), connections only to the
gateway and the intake API, images only from the gateway and the configured tile server.

The pages hold their token in the browser (typed in, or handed over in the URL fragment, which
no browser sends to a server); the gateway sees it only in the Authorization header of
`GET /v1/zone`, never in a URL, and neither echoes nor logs it.
"""

from __future__ import annotations

import http
import json
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from consumers import metrics
from consumers.auth import UNIT_ROLES, AuthenticationFailed, Principal, can_command
from consumers.db.faults import DATABASE_DOWN
from consumers.push.sessions import RateLimiter
from dispatch.settings import Settings
from dispatch.zone import Zone

log = logging.getLogger(__name__)

# web/dist of this checkout: where `npm run build` in web/ writes the pages.
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "web" / "dist"
PAGES = {"/": "index.html", "/board": "board.html", "/unit": "unit.html", "/desk": "desk.html"}
ASSETS_PREFIX = "/assets/"
CONFIG_PATH = "/config.json"
# The process's Prometheus metrics: counts only, no token, like /healthz (docs/operations.md).
METRICS_PATH = "/metrics"
ZONE_PATH = "/v1/zone"
NOT_BUILT = (
    "the pages are not built: run `npm ci && npm run build` in web/ "
    "(`make run` does), then restart the gateway\n"
)
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}

Authenticate = Callable[[str], Awaitable[Principal]]


def origin_of(url: str) -> str:
    """Return the scheme://host[:port] of a URL ("https://*.example.cn" for a {s} template)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"


def intake_url(settings: Settings) -> str:
    """Return the intake API's address as the pages' browsers reach it."""
    return settings.pages_intake_url or f"http://{settings.gateway_host}:{settings.intake_port}"


def content_security_policy(settings: Settings) -> str:
    """Return the policy every answer of the pages carries."""
    images = ["'self'", "data:"]
    if settings.map_tile_url:
        images.append(origin_of(settings.map_tile_url))
    # 'self' covers ws:// and wss:// of the gateway's own host and port (CSP level 3).
    connect = ["'self'", origin_of(intake_url(settings))]
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(images)}",
            f"connect-src {' '.join(connect)}",
            "font-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def zone_document(zone: Zone, principal: Principal) -> dict[str, object]:
    """Return what a page may know of the zone: its map for all, its units as the role allows.

    Grids and places are the map everyone with a channel sees; the units (names, kinds,
    bases) are the commander's, and a unit's own entry is its own. A desk gets no units.
    """
    if can_command(principal):
        units = zone.units
    elif principal.role in UNIT_ROLES:
        units = tuple(u for u in zone.units if u.id == principal.unit_id)
    else:
        units = ()
    return {
        "id": zone.id,
        "name": zone.name,
        "grids": [
            {
                "id": g.id,
                "name": g.name,
                "district": g.district,
                # Which arrival norm the board's figures hold the grid to (docs/zone.md).
                "area": g.area.value,
                "polygon": [list(v) for v in g.polygon],
            }
            for g in zone.grids
        ],
        "places": [
            {
                "id": p.id,
                "name": p.name,
                "type": p.type.value,
                "position": {"lat": p.position.lat, "lon": p.position.lon},
            }
            for p in zone.places
        ],
        "units": [
            {
                "id": u.id,
                "name": u.name,
                "kind": u.kind.value,
                "home": {"lat": zone.home_position(u).lat, "lon": zone.home_position(u).lon},
            }
            for u in units
        ],
        "accept_timeout_s": {str(p): float(s) for p, s in zone.policy.accept_timeout_s.items()},
    }


class Pages:
    """Answer the plain HTTP requests for the pages; None for anything else (websockets)."""

    def __init__(
        self,
        settings: Settings,
        *,
        zone: Zone,
        authenticate: Authenticate,
        failed_auth: RateLimiter,
        can_connect: Callable[[Principal], bool],
        root: Path | None = None,
    ) -> None:
        self._zone = zone
        self._authenticate = authenticate
        self._failed_auth = failed_auth
        self._can_connect = can_connect
        self._csp = content_security_policy(settings)
        self._config = json.dumps(
            {
                "intake_url": intake_url(settings),
                "tile_url": settings.map_tile_url,
                "tile_attribution": settings.map_tile_attribution,
            }
        ).encode()
        root = root or settings.pages_dir or DEFAULT_ROOT
        self._files = self._read(root)
        if not self._files:
            log.warning("no pages in %s: %s", root, NOT_BUILT.strip())

    @staticmethod
    def _read(root: Path) -> dict[str, tuple[bytes, str]]:
        """Read every built file into memory, keyed by the path it is served at."""
        files: dict[str, tuple[bytes, str]] = {}
        if not root.is_dir():
            return files
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            relative = path.relative_to(root).as_posix()
            kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
            files["/" + relative] = (path.read_bytes(), kind or "application/octet-stream")
        return files

    async def answer(self, ws: ServerConnection, request: Request) -> Response | None:
        """Return the answer to a page request, or None to let the websocket handshake go on."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        path = request.path.partition("?")[0]
        if path == CONFIG_PATH:
            return self._respond(http.HTTPStatus.OK, self._config, "application/json")
        if path == METRICS_PATH:
            return self._respond(http.HTTPStatus.OK, await metrics.render(), metrics.CONTENT_TYPE)
        if path == ZONE_PATH:
            return await self._zone_answer(ws, request)
        name = PAGES.get(path)
        served = "/" + name if name else path if path.startswith(ASSETS_PREFIX) else None
        if served is None:
            return None
        if not self._files:
            return self._respond(http.HTTPStatus.SERVICE_UNAVAILABLE, NOT_BUILT.encode())
        found = self._files.get(served)
        if found is None:
            return self._respond(http.HTTPStatus.NOT_FOUND, b"not found\n")
        body, kind = found
        return self._respond(http.HTTPStatus.OK, body, kind, cache=name is None)

    async def _zone_answer(self, ws: ServerConnection, request: Request) -> Response:
        scheme, _, secret = request.headers.get("Authorization", "").strip().partition(" ")
        remote = str(ws.remote_address[0]) if ws.remote_address else "unknown"
        try:
            if scheme.lower() != "bearer" or not secret.strip():
                raise AuthenticationFailed("no bearer token")
            principal = await self._authenticate(secret.strip())
        except AuthenticationFailed as exc:
            if (wait := self._failed_auth.take(remote)) is not None:
                response = self._respond(http.HTTPStatus.TOO_MANY_REQUESTS, b"try again later\n")
                response.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
                return response
            log.info("refused a zone request from %s: %s", remote, exc.reason)
            response = self._respond(http.HTTPStatus.UNAUTHORIZED, b"unauthorised\n")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        except DATABASE_DOWN as exc:
            log.warning("cannot authenticate a zone request: %s", exc)
            return self._respond(http.HTTPStatus.SERVICE_UNAVAILABLE, b"try again later\n")
        if not self._can_connect(principal):
            return self._respond(http.HTTPStatus.FORBIDDEN, b"no page for this role\n")
        body = json.dumps(zone_document(self._zone, principal), ensure_ascii=False).encode()
        return self._respond(http.HTTPStatus.OK, body, "application/json", private=True)

    def _respond(
        self,
        status: http.HTTPStatus,
        body: bytes,
        kind: str = "text/plain; charset=utf-8",
        *,
        cache: bool = False,
        private: bool = False,
    ) -> Response:
        headers = Headers()
        headers["Content-Type"] = kind
        headers["Content-Length"] = str(len(body))
        headers["Content-Security-Policy"] = self._csp
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Frame-Options"] = "DENY"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "geolocation=(self), camera=(), microphone=()"
        # Assets are revalidated (their names carry no hash); pages and the zone never kept.
        headers["Cache-Control"] = "no-cache" if cache and not private else "no-store"
        headers["Connection"] = "close"
        return Response(status.value, status.phrase, headers, body)
