"""Cross-origin requests from the web pages (docs/pages.md).

The pages are served by the push gateway, on another port (so another origin) than intake,
and send alarms and read the board from intake with a bearer token in the Authorization
header. Browsers allow that only when intake names the pages' origin: it names exactly the
configured ones (the gateway's own address by default), never `*`, and allows no cookies,
since the pages carry their token in a header and hold no cookie.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from dispatch.settings import Settings

LOOPBACK = ("127.0.0.1", "localhost")


def page_origins(settings: Settings) -> list[str]:
    """Return the origins the pages are served from: configured, or the gateway's own."""
    if settings.pages_origins:
        return [o.strip().rstrip("/") for o in settings.pages_origins.split(",") if o.strip()]
    hosts = LOOPBACK if settings.gateway_host in LOOPBACK else (settings.gateway_host,)
    return [f"http://{host}:{settings.push_port}" for host in hosts]


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Let the pages' origins call the API with a token; answer preflights for them."""
    app.add_middleware(
        CORSMiddleware,
        allow_origins=page_origins(settings),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Idempotent-Replayed", "Retry-After"],
        allow_credentials=False,
        max_age=600,
    )
