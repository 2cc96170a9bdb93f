"""A child process of a benchmark (a gateway, its clients, the phones, a load process), spoken
to by lines on stdin and stdout. Used by bench/push_fanout.py and bench/e2e."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


class Child:
    """A child process, spoken to by lines on stdin and stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, module: str, *args: str) -> Child:
        """Start `python -m MODULE ARGS` from the repository's root."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
            limit=256 * 1024 * 1024,
        )
        return cls(process)

    async def line(self) -> str:
        """Return the next line it printed."""
        assert self.process.stdout is not None  # created with stdout=PIPE
        text = (await self.process.stdout.readline()).decode().strip()
        if not text:
            raise RuntimeError(f"child {self.process.pid} exited ({await self.process.wait()})")
        return text

    def say(self, text: str) -> None:
        """Send it one line."""
        assert self.process.stdin is not None  # created with stdin=PIPE
        self.process.stdin.write(text.encode() + b"\n")

    async def stop(self) -> str:
        """Close its stdin, wait for it to exit, and return what it printed last."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        rest = await asyncio.wait_for(self.process.stdout.read(), 120)
        await asyncio.wait_for(self.process.wait(), 120)
        return rest.decode().strip()
