"""The bench's outputs: a markdown table per aspect, the JSON of a run, the PNG plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.e2e.hops import HOPS

TARGET_P99_MS = 50.0
TARGET_RATE = 2000.0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def latency_table(run: dict[str, Any]) -> str:
    """Return the main table: rates, what got through, latency, cores, others."""
    floor = run["floor"]["floor_ms"]
    head = (
        "offered/s", "skipped", "receipted/s", "jobs/s", "jobs / receipted", "escalated",
        "job p50", "p95", "p99", "max", "p99 / floor", "accept p50", "accept p99",
        "202 p50", "202 p99", "cores", "others",
    )  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " ---: |" * len(head)]
    for r in run["rates"]:
        job, accept, desk = r["job_ms"], r["accept_ms"], r["desk_wait_ms"]
        ratio = f"{job['p99'] / floor:.1f}" if job["p99"] is not None and floor else "-"
        lines.append(
            f"| {r['rate']:g} | {r['skipped']} | {r['receipted_per_s']:g} | {r['jobs_per_s']:g} | "
            f"{r['jobs']} / {r['receipted']} | {r['escalated']} | {_ms(job['p50'])} | "
            f"{_ms(job['p95'])} | {_ms(job['p99'])} | {_ms(job['max'])} | {ratio} | "
            f"{_ms(accept['p50'])} | {_ms(accept['p99'])} | {_ms(desk['p50'])} | "
            f"{_ms(desk['p99'])} | {r['cores']:g} | {r['others']:g} |"
        )
    return "\n".join(lines)


def cpu_table(run: dict[str, Any], key: str = "cpu_ms_per_alarm_net") -> str:
    """Return CPU milliseconds per receipted alarm, by process, per rate."""
    names = sorted({name for r in run["rates"] for name in r[key]})
    lines = [
        "| offered/s | " + " | ".join(names) + " | total |",
        "| ---: |" + " ---: |" * (len(names) + 1),
    ]
    for r in run["rates"]:
        cpu = r[key]
        cells = " | ".join(f"{cpu.get(name, 0.0):.2f}" for name in names)
        lines.append(f"| {r['rate']:g} | {cells} | {sum(cpu.values()):.2f} |")
    return "\n".join(lines)


def hops_table(run: dict[str, Any]) -> str:
    """Return each hop's p50 / p99 in milliseconds, per rate."""
    lines = [
        "| offered/s | alarms | " + " | ".join(HOPS) + " |",
        "| ---: | ---: |" + " ---: |" * len(HOPS),
    ]
    for r in run["rates"]:
        cells = " | ".join(
            f"{_ms(r['hops_ms'][hop]['p50'])} / {_ms(r['hops_ms'][hop]['p99'])}" for hop in HOPS
        )
        lines.append(f"| {r['rate']:g} | {r['hops_alarms']} | {cells} |")
    return "\n".join(lines)


def floor_line(run: dict[str, Any]) -> str:
    """Return the floor in one line."""
    lines = []
    for when in ("floor", "floor_after"):
        f = run.get(when)
        if f:
            lines.append(
                f"{when.replace('_', ' ')}: Kafka round trip (acks=all) p50 "
                f"{f['kafka_round_trip_p50_ms']} ms, p99 {f['kafka_round_trip_p99_ms']} ms; "
                f"commit p50 {f['commit_p50_ms']} ms, p99 {f['commit_p99_ms']} ms; "
                f"{f['kafka_hops']} hops + {f['commits']} commits = {f['floor_ms']} ms "
                f"(hops + the outbox commit only: {f['floor_one_commit_ms']} ms)"
            )
    return "\n".join(lines)


def print_run(run: dict[str, Any]) -> None:
    """Print a run's tables."""
    print(f"\ncommand: {run['command']}")
    print(f"machine: {run['machine']}")
    print(floor_line(run))
    print("\nreceipt → job frame and → acceptance (ms), sustained rate, cores\n")
    print(latency_table(run))
    idle = run.get("idle_cores", {})
    print(f"\nidle cores by process: {idle} (sum {sum(idle.values()):.2f})")
    print("\nCPU ms per receipted alarm, by process, as spent\n")
    print(cpu_table(run, "cpu_ms_per_alarm"))
    print(
        "\nthe same with each process's idle CPU taken off (noisy when others load the machine)\n"
    )
    print(cpu_table(run))
    print("\nper hop, ms p50 / p99 (alarms with every timestamp)\n")
    print(hops_table(run))


def write_json(run: dict[str, Any], path: Path) -> None:
    """Write the run as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=1, ensure_ascii=False), encoding="utf-8")


def plot(runs: Sequence[dict[str, Any]], path: Path) -> None:
    """Plot latency (p50, p95, p99, accept p99) and the sustained rate against the offered
    rate, every run given, with the floor, twice the floor and the targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (latency, rate) = plt.subplots(1, 2, figsize=(13, 5.2))
    styles = ("-", "--", ":", "-.")
    for n, run in enumerate(runs):
        rows = [r for r in run["rates"] if r["job_ms"]["p50"] is not None]
        x = [r["rate"] for r in rows]
        style = styles[n % len(styles)]
        label = run.get("label", f"run {n + 1}")
        for key, colour in (("p50", "tab:blue"), ("p95", "tab:orange"), ("p99", "tab:red")):
            y = [r["job_ms"][key] for r in rows]
            latency.plot(x, y, style, marker="o", color=colour, label=f"job {key}, {label}")
        y = [r["accept_ms"]["p99"] for r in rows]
        latency.plot(x, y, style, marker="s", color="tab:purple", label=f"accept p99, {label}")
        rate.plot(x, [r["jobs_per_s"] for r in rows], style, marker="o", label=label)
    floor = runs[0]["floor"]["floor_ms"]
    latency.axhline(floor, color="grey", linewidth=1, label=f"floor {floor:.1f} ms")
    latency.axhline(2 * floor, color="grey", linestyle="--", linewidth=1, label="2 x floor")
    latency.axhline(TARGET_P99_MS, color="black", linestyle=":", label="target p99 at 500/s")
    latency.set(xscale="log", yscale="log", xlabel="offered alarms/s", ylabel="ms from receipt")
    latency.set_title("receipt → job frame on the unit's phone")
    latency.legend(fontsize=7)
    latency.grid(True, which="both", alpha=0.3)
    top = max(r["rate"] for run in runs for r in run["rates"])
    rate.plot([1, top], [1, top], color="grey", linewidth=1, label="offered")
    rate.axhline(TARGET_RATE, color="black", linestyle=":", label="target 2,000/s")
    rate.set(xscale="log", yscale="log", xlabel="offered alarms/s", ylabel="jobs shown per s")
    rate.set_title("sustained rate: alarms whose job arrived, per second")
    rate.legend(fontsize=7)
    rate.grid(True, which="both", alpha=0.3)
    fig.suptitle(runs[0].get("machine", ""), fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
