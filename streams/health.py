"""`python -m streams.health`: exit 0 when the stream worker on this host answers `/readyz` with
200 (its stages handle their partitions and none is stalled), 1 otherwise, printing why.
docker-compose.yml's health check of each stream worker."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from dispatch.settings import Settings

TIMEOUT_S = 5.0


def readiness(url: str) -> tuple[bool, str]:
    """Ask a worker's /readyz; return whether it is ready and what it said."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as reply:  # noqa: S310  # our own http URL
            return True, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return False, f"no answer: {exc}"


def main() -> int:
    """Check the worker whose probe port the settings name."""
    settings = Settings()
    ready, said = readiness(f"http://127.0.0.1:{settings.stream_probe_port}/readyz")
    print(said)
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main())
