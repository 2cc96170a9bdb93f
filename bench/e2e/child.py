"""A child process of the bench (the phones, a load process), spoken to by lines."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class Child:
    """A child process, spoken to by lines on stdin and stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, *args: str) -> Child:
        """Start `python -m bench.e2e ARGS`."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.e2e",
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
            raise RuntimeError(f"a child process exited ({await self.process.wait()})")
        return text

    def say(self, text: str) -> None:
        """Send it one line."""
        assert self.process.stdin is not None  # created with stdin=PIPE
        self.process.stdin.write(text.encode() + b"\n")

    async def stop(self) -> None:
        """Close its input and wait for it to end."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        await asyncio.wait_for(self.process.wait(), 60)
