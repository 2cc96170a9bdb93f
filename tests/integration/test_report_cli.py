"""`dispatch report` as a person runs it, on the hand-built record of test_report_figures.

The command runs in a child process against a fresh schema holding that record (the URL
names the schema as a server setting), for November 2026: the terminal table, --csv and
--html, and its one-line errors.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.processes import free_port
from tests.integration.principals import connection, fresh_store
from tests.integration.test_report_figures import write_record

NOVEMBER = ("--from", "2026-11-01", "--to", "2026-12-01")
RUN_WAIT_S = 300.0  # a hang guard: drawing the charts takes seconds on a busy machine
_NAMESPACES = re.compile(r'xmlns(:xlink)?="http://www\.w3\.org/[^"]*"')


@dataclass(frozen=True)
class Run:
    """What one command printed and how it exited."""

    code: int
    stdout: str
    stderr: str


async def run_report(*args: str, postgres_url: str, state_dir: Path) -> Run:
    """Run `python -m cli report ARGS` in a child process pointed at one PostgreSQL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env |= {"DISPATCH_POSTGRES_URL": postgres_url, "DISPATCH_STATE_DIR": str(state_dir)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "report",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), timeout=RUN_WAIT_S)
    assert child.returncode is not None
    return Run(child.returncode, stdout.decode(), stderr.decode())


@pytest.fixture(scope="module")
async def record_url(postgres_url: str) -> AsyncIterator[str]:
    """Yield a URL whose connections use a fresh schema holding the hand-built record."""
    async with fresh_store(postgres_url) as pool:
        async with connection(pool) as conn:
            await write_record(conn)
            schema = await conn.fetchval("SELECT current_schema()")
        # asyncpg passes query parameters it does not know on as server settings.
        yield f"{postgres_url}{'&' if '?' in postgres_url else '?'}search_path={schema}"


async def test_terminal_table(record_url: str, tmp_path: Path) -> None:
    run = await run_report(*NOVEMBER, postgres_url=record_url, state_dir=tmp_path)
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].endswith("10 alarms, 7 incidents (1 cancelled)")
    assert "2026-11-01 00:00 to 2026-12-01 00:00 (Asia/Shanghai)" in lines[0]
    # The figures worked out in test_report_figures.
    alarms = next(line for line in lines if line.startswith("报警总量 alarms"))
    assert alarms.split()[2:] == ["10", "8", "+25.0", "%", "20", "-50.0", "%"]
    criminal = next(line for line in lines if line.startswith("刑事案件 criminal cases"))
    assert criminal.split()[3:] == ["2", "5", "-60.0", "%", "4", "-50.0", "%"]
    nfpa = next(line for line in lines if line.startswith("NFPA 1225"))
    assert nfpa.split()[-6:] == ["6", "5", "83.3", "%", "NOT", "met"]
    response = next(line for line in lines if line.startswith("received → arrived"))
    assert response.split()[3:] == ["4", "3m50s", "6m07s", "6m37s"]


async def test_csv_and_html_files(record_url: str, tmp_path: Path) -> None:
    table, page = tmp_path / "november.csv", tmp_path / "november.html"
    run = await run_report(
        *NOVEMBER,
        "--csv",
        str(table),
        "--html",
        str(page),
        postgres_url=record_url,
        state_dir=tmp_path,
    )
    assert run.code == 0, run.stderr
    assert run.stdout.splitlines() == [f"wrote {table}", f"wrote {page}"]
    rows = list(csv.reader(io.StringIO(table.read_text(encoding="utf-8"))))
    figures = {(r[0], r[1], r[2], r[4]): r[5] for r in rows[1:]}
    assert figures[("changes", "", "alarms", "yoy_pct")] == "-50.0"
    assert figures[("changes", "fight", "public_order", "yoy_pct")] == "-75.0"
    assert figures[("interval:response", "overall", "", "p50_s")] == "230.0"
    assert figures[("compliance", "circle", "5", "within")] == "3"
    assert figures[("screening", "2026-11", "cd-g01", "hazards_resolved")] == "1"
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<svg") == 9
    for loader in ("<script", "<img", "<link", "src=", "@import"):
        assert loader not in html
    assert re.findall(r"url\((?!#)", html) == []
    assert "http" not in _NAMESPACES.sub("", html)
    assert "同比 YoY -50.0 %" in html
    # No temporary file is left beside the written ones.
    left = await asyncio.to_thread(lambda: sorted(p.name for p in tmp_path.iterdir()))
    assert left == ["november.csv", "november.html"]
    # Written with the mode any new file gets, not the temporary file's private 0600.
    umask = os.umask(0)
    os.umask(umask)
    modes = await asyncio.to_thread(lambda: {stat.S_IMODE(p.stat().st_mode) for p in (table, page)})
    assert modes == {0o666 & ~umask}


async def test_a_bad_period_is_one_line_naming_the_option(record_url: str, tmp_path: Path) -> None:
    run = await run_report(
        "--from", "2026-12-01", "--to", "2026-11-01", postgres_url=record_url, state_dir=tmp_path
    )
    assert run.code == 2
    assert run.stderr.strip().splitlines() == [
        "dispatch: error: --to: must be after from (the period is [from, to), to excluded)"
    ]


async def test_postgres_unreachable_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql://dispatch:s3cret-pw@127.0.0.1:{free_port()}/dispatch"
    run = await run_report(*NOVEMBER, postgres_url=url, state_dir=tmp_path)
    assert run.code == 1
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("dispatch: error: cannot connect to PostgreSQL at 127.0.0.1:")
    assert "s3cret-pw" not in line


async def test_an_unwritable_file_is_one_line(record_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-directory" / "r.csv"
    run = await run_report(
        *NOVEMBER, "--csv", str(missing), postgres_url=record_url, state_dir=tmp_path
    )
    assert run.code == 1
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(f"dispatch: error: cannot write {missing}:")
