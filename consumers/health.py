"""`python -m consumers.health SERVICE`: exit 0 when the service on this host answers its
`/readyz` with 200, 1 otherwise, printing what it said. docker-compose.yml's health checks.

SERVICE is `intake`, `push`, `reconciler`, `sink` or `stream` (a stream worker); the port is the
service's own from the settings (`DISPATCH_*`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from dispatch.settings import Settings
from infra.supervisor import readiness

PORTS: dict[str, Callable[[Settings], int]] = {
    "intake": lambda s: s.intake_port,
    "push": lambda s: s.push_port,
    "reconciler": lambda s: s.reconciler_probe_port,
    "sink": lambda s: s.sink_probe_port,
    "stream": lambda s: s.stream_probe_port,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Ask the named service whether it is ready."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in PORTS:
        print(f"usage: python -m consumers.health {{{','.join(PORTS)}}}", file=sys.stderr)
        return 2
    port = PORTS[args[0]](Settings())
    ready, said = readiness(f"http://127.0.0.1:{port}/readyz")
    print(said)
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main())
