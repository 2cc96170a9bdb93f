"""Which origins intake lets call it: the pages' only."""

from __future__ import annotations

from consumers.intake.cors import page_origins
from dispatch.settings import Settings


def test_by_default_the_gateways_own_address_by_either_loopback_name() -> None:
    assert page_origins(Settings(push_port=9001)) == [
        "http://127.0.0.1:9001",
        "http://localhost:9001",
    ]


def test_a_public_host_is_named_as_it_is() -> None:
    assert page_origins(Settings(gateway_host="10.1.2.3", push_port=8081)) == [
        "http://10.1.2.3:8081"
    ]


def test_configured_origins_replace_the_default() -> None:
    settings = Settings(pages_origins="https://dispatch.example.cn/, https://wall.example.cn")
    assert page_origins(settings) == ["https://dispatch.example.cn", "https://wall.example.cn"]
