"""A service's database URL comes from its settings alone: the configured URL, else the local
server's settings and the password its launcher left under the state directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from consumers.db.url import NoDatabaseURL, database_problem, database_url
from dispatch.settings import Settings
from infra.postgres import PostgresServer


def settings_in(state: Path, **values: object) -> Settings:
    return Settings(state_dir=state, postgres_port=55432, **values)  # type: ignore[arg-type]


def test_a_configured_url_is_used_as_it_is(tmp_path: Path) -> None:
    url = "postgresql://app:s3cret@db.internal:5432/dispatch?sslmode=verify-full"
    assert database_url(settings_in(tmp_path, postgres_url=SecretStr(url))) == url


def test_the_local_servers_url_is_the_launchers(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    launcher = PostgresServer(settings)
    expected = launcher.url()  # the launcher generates the password on first use
    assert database_url(settings) == expected


def test_a_configured_password_needs_no_file(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, postgres_password=SecretStr("p@ss/word"))
    url = database_url(settings)
    assert "p%40ss%2Fword@" in url
    assert url == PostgresServer(settings).url()


def test_nothing_configured_is_a_clear_error_not_a_new_server(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    with pytest.raises(NoDatabaseURL, match="DISPATCH_POSTGRES_URL"):
        database_url(settings)
    problem = database_problem(settings)
    assert problem is not None
    assert "dispatch infra up" in problem
    # Asking made nothing: no state directory, no password.
    assert not (tmp_path / "postgres").exists()
