"""nginx in front of two intake services and two push gateways, as deploy/nginx's sample puts
it: the sample template rendered with the test's ports, run as one more supervised process."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from string import Template

from infra.supervisor import ServiceSpec

TEMPLATE = Path(__file__).resolve().parents[3] / "deploy" / "nginx" / "alarm-dispatch.conf.template"

_MAIN = """{user}
pid {home}/nginx.pid;
error_log {home}/error.log warn;
worker_processes 1;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {home}/body;
    proxy_temp_path {home}/proxy;
    fastcgi_temp_path {home}/fastcgi;
    uwsgi_temp_path {home}/uwsgi;
    scgi_temp_path {home}/scgi;
    include {home}/alarm-dispatch.conf;
}}
"""


def render(home: Path, *, host: str, listen: int, intakes: list[int], pushes: list[int]) -> Path:
    """Write the sample's server block and a main config around it; return the main config."""
    home.mkdir(parents=True, exist_ok=True)

    def servers(ports: list[int]) -> str:
        return "\n".join(f"    server {host}:{port} max_fails=3 fail_timeout=2s;" for port in ports)

    block = Template(TEMPLATE.read_text()).safe_substitute(
        INTAKE_SERVERS=servers(intakes), PUSH_SERVERS=servers(pushes), LISTEN=f"{host}:{listen}"
    )
    (home / "alarm-dispatch.conf").write_text(block)
    # As root, nginx's workers would drop to `nobody`, which cannot use this state directory.
    user = "user root;" if os.geteuid() == 0 else ""
    main = home / "nginx.conf"
    main.write_text(_MAIN.format(user=user, home=home))
    return main


def balancer_spec(
    home: Path, host: str, listen: int, *, intakes: list[int], pushes: list[int]
) -> ServiceSpec:
    """Return the load balancer as a service the supervisor runs (its /healthz is a gateway's)."""
    conf = render(home, host=host, listen=listen, intakes=intakes, pushes=pushes)
    command = ("nginx", "-p", str(home), "-c", str(conf), "-g", "daemon off;")
    return ServiceSpec("load balancer", command, f"http://{host}:{listen}/healthz")


def gateway_specs(host: str, intake_port: int, push_port: int) -> list[ServiceSpec]:
    """Return a second intake service and a second push gateway on their own ports."""
    python = sys.executable
    return [
        ServiceSpec(
            "intake API 2",
            (python, "-m", "consumers.intake"),
            f"http://{host}:{intake_port}/readyz",
            env={"DISPATCH_INTAKE_PORT": str(intake_port)},
        ),
        ServiceSpec(
            "push gateway 2",
            (python, "-m", "consumers.push"),
            f"http://{host}:{push_port}/readyz",
            env={"DISPATCH_PUSH_PORT": str(push_port)},
        ),
    ]
