"""Read a service's `/metrics` the way Prometheus does: the value of one sample."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, **labels: str) -> float:
    """Return the value of the sample called name with these labels (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


async def scrape(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """GET /metrics (no token) and return one sample's value."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return sample(response.text, name, **labels)
