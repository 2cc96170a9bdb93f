"""Session-wide real infrastructure: one Kafka broker and one PostgreSQL server per test run."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from dispatch.settings import Settings
from infra import stack
from infra.topics import TopicDecl, ensure_topics

INTEGRATION_DIR = Path(__file__).parent / "integration"
_OWN_BASETEMP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Keep this run's temporary files in a directory of its own, outside pytest-of-<user>.

    Every pytest session resets pytest-of-<user> to mode 0700 when it starts; a second test run
    on the machine would then lock the PostgreSQL server of this one (it runs as another
    user) out of its own data directory.
    """
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="alarm-dispatch-pytest-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the run's own temporary directory (the session's servers are stopped by now)."""
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration as needing the real services."""
    for item in items:
        if INTEGRATION_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
async def task_dump_on_sigusr1() -> AsyncIterator[None]:
    """`kill -USR1 <pytest's pid>` prints the stack of every task of the tests' event loop to
    stderr: where a test that seems to hang is waiting (a thread dump shows only the loop)."""

    def dump() -> None:
        tasks = asyncio.all_tasks()
        print(f"--- {len(tasks)} asyncio tasks ---", file=sys.stderr)
        for task in tasks:
            task.print_stack(file=sys.stderr)

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, dump)
    yield
    loop.remove_signal_handler(signal.SIGUSR1)


@pytest.fixture(scope="session")
def infra_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for this test run: own state directory and own ports, shared jar cache."""
    return stack.private_settings(tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="session")
def running_stack(infra_settings: Settings) -> Iterator[Settings]:
    """Start Kafka and PostgreSQL through the project's own launcher; stop them at the end."""
    stack.up(infra_settings, print)
    yield infra_settings
    stack.down(infra_settings, print)


@pytest.fixture(scope="session")
def bootstrap(running_stack: Settings) -> str:
    """Return the bootstrap address of the running broker."""
    return running_stack.bootstrap_servers


@pytest.fixture(scope="session")
def postgres_url(running_stack: Settings) -> str:
    """Return the URL of the running PostgreSQL server (the app role)."""
    return stack.postgres_url(running_stack)


NewTopics = Callable[..., Awaitable[list[str]]]


@pytest.fixture
def new_topics(bootstrap: str) -> NewTopics:
    """Create fresh, uniquely named topics for one test."""

    async def create(*stems: str, partitions: int = 1) -> list[str]:
        names = [f"t.{stem}.{uuid.uuid4().hex[:12]}" for stem in stems]
        await ensure_topics(bootstrap, [TopicDecl(name, partitions) for name in names])
        return names

    return create


@pytest.fixture
def group_id() -> str:
    """Return a consumer group id no other test uses."""
    return f"g.{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Yield a connection whose search_path is a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(postgres_url)
    # Schema names cannot be bind parameters; this one is generated above, never user input.
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.execute(f'SET search_path TO "{schema}"')
    try:
        yield conn
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()
