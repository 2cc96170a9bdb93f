"""The shipped rules and the shipped zone speak the same capability vocabulary."""

from __future__ import annotations

import tomllib
from typing import Any

from dispatch.classify import default_rules_path
from dispatch.zone import default_zone_path, load_zone


def capabilities_in(node: Any) -> set[str]:
    """Collect every capability named under a `needs` table anywhere in a TOML tree."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "needs" and isinstance(value, dict):
                found |= {str(item) for item in value}
            else:
                found |= capabilities_in(value)
    elif isinstance(node, list):
        for item in node:
            found |= capabilities_in(item)
    return found


def test_every_capability_the_rules_require_is_offered_by_a_demo_unit() -> None:
    rules = tomllib.loads(default_rules_path().read_text(encoding="utf-8"))
    required = capabilities_in(rules)
    assert {"patrol", "fire", "medical", "mediation", "hazmat", "rescue"} <= required
    offered = {cap for unit in load_zone(default_zone_path()).units for cap in unit.capabilities}
    assert required <= offered
