"""`dispatch triage`: a dry run of classification and routing for dispatchers and rule authors.

Reads alarms as JSON lines on stdin (`{"text": ..., "source": "hotline|desk|guard|sensor",
"place_id" or "lat"/"lon", optional "sensor_kind", "enterprise_id", "source_id"}`) or one
`--text`, and writes one JSON object per alarm: category, priority, the capabilities the plan
needs, the signals with their evidence, and the plan (units, parts, ETAs, reasons, and what the
commander gets). Nothing is published.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from dispatch.classify import default_rules_path, load_rules
from dispatch.dry_run import (
    InvalidDryAlarm,
    Statuses,
    as_json,
    dry_run,
    fleet_at_home,
    fleet_from,
    zone_centre,
)
from dispatch.events import Position
from dispatch.policy import policy_of
from dispatch.settings import Settings
from dispatch.zone import default_zone_path, load_zone

Say = Callable[[str], None]


def register(sub: Any) -> None:
    """Add the `triage` subcommand."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "triage",
        help="classify alarms and show the units that would be sent, without sending any",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--text", help="one alarm's text (else JSON lines on stdin)")
    parser.add_argument("--source", default="hotline", help="hotline, desk, guard or sensor")
    parser.add_argument("--place-id", help="a zone place id")
    parser.add_argument("--enterprise-id", help="the raising enterprise's place id")
    parser.add_argument("--sensor-kind", help="the sensor kind (else the device's, registered)")
    parser.add_argument("--lat", type=float)
    parser.add_argument("--lon", type=float)
    parser.add_argument("--explain", action="store_true", help="print for a person, not JSON")
    parser.add_argument(
        "--units",
        type=Path,
        help="JSON lines {unit_id, status, lat, lon}: the board to plan on (units not listed are "
        "off duty); default: every zone unit available at its home position",
    )
    parser.add_argument("--zone", type=Path, help="zone file (default: DISPATCH_ZONE_FILE)")
    parser.add_argument("--rules", type=Path, help="rules file (default: DISPATCH_RULES_FILE)")
    parser.set_defaults(handler=triage_command)


def triage_command(args: argparse.Namespace, settings: Settings, say: Say) -> int:
    """Triage each alarm and print its plan; exit 2 when an input line is not an alarm."""
    zone = load_zone(args.zone or settings.zone_file or default_zone_path())
    rules = load_rules(args.rules or settings.rules_file or default_rules_path())
    now = datetime.now(UTC)
    if args.units is not None:
        index = fleet_from(zone, read_units(args.units), now, unlisted="off_duty")
    else:
        index = fleet_at_home(zone, now)
    routing = policy_of(zone).routing
    centre = zone_centre(zone)
    failed = 0
    for number, fields in enumerate(alarms(args, sys.stdin), start=1):
        try:
            run = dry_run(zone, rules, fields, index, now=now, routing=routing, fallback=centre)
        except (InvalidDryAlarm, ValueError) as exc:
            print(f"dispatch triage: alarm {number}: {exc}", file=sys.stderr)
            failed += 1
            continue
        shown = as_json(run, zone)
        if not _placed(fields):
            shown["place_note"] = "no place given: planned from the zone's centre"
        if args.explain:
            for line in explain(fields, shown):
                say(line)
        else:
            say(json.dumps(shown, ensure_ascii=False))
    return 2 if failed else 0


def _placed(fields: dict[str, Any]) -> bool:
    keys = ("place_id", "place_name", "enterprise_id", "lat", "source_id")
    return any(fields.get(k) is not None for k in keys)


def alarms(args: argparse.Namespace, stdin: TextIO) -> Iterable[dict[str, Any]]:
    """Yield the alarms to triage: the one `--text`, else each JSON line of stdin."""
    if args.text is not None:
        yield {
            "text": args.text,
            "source": args.source,
            "place_id": args.place_id,
            "enterprise_id": args.enterprise_id,
            "sensor_kind": args.sensor_kind,
            "lat": args.lat,
            "lon": args.lon,
        }
        return
    for line in stdin:
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield {"text": None, "error": f"not JSON: {exc}"}
                continue
            yield row if isinstance(row, dict) else {"text": None}


def read_units(path: Path) -> Statuses:
    """Read a board: one JSON object per line with unit_id, status, and lat/lon."""
    board: dict[str, tuple[str, Position | None]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            position = None
            if row.get("lat") is not None and row.get("lon") is not None:
                position = Position(lat=row["lat"], lon=row["lon"])
            board[str(row["unit_id"])] = (str(row.get("status", "available")), position)
    return board


def explain(fields: dict[str, Any], shown: dict[str, Any]) -> list[str]:
    """Return a dry run as lines for a person."""
    needs = ", ".join(f"{c} x{n}" for c, n in shown["needs"].items())
    lines = [
        f"alarm: {str(fields.get('text'))[:120]}",
        f"  P{shown['priority']} {shown['category']}, needs {needs}",
    ]
    for signal in shown["signals"]:
        words = ", ".join(_word(e) for e in signal["evidence"])
        lines.append(f"  signal {signal['name']}: {words}")
    for aside in shown["discounted"]:
        lines.append(f"  set aside: {aside['text']!r} ({aside['discounted_by']})")
    place = shown["place"]
    if place is not None:
        name = place["name"] or f"{place['lat']:.4f}, {place['lon']:.4f}"
        lines.append(f"  place: {name} ({place['type']}, grid {place['grid_id']})")
    if "place_note" in shown:
        lines.append(f"  note: {shown['place_note']}")
    plan = shown["plan"]
    lines.append("  send:" if plan["units"] else "  send: nobody")
    for unit in plan["units"]:
        lines.append(
            f"    {unit['unit_id']:<24} {unit['kind']:<15} part {unit['part']:<15} "
            f"ETA {unit['eta_s']:>6.0f} s  ({unit['reason']})  {unit['name']}"
        )
    if plan["mutual_aid"]:
        lines.append("  alert (mutual aid): " + ", ".join(u["unit_id"] for u in plan["mutual_aid"]))
    commander = plan["commander"]
    lines.append(f"  commander: {commander['reason']}" if commander["needed"] else "  commander: -")
    return lines


def _word(evidence: dict[str, Any]) -> str:
    shown = str(evidence["keyword"])
    if evidence["text"] != evidence["keyword"]:
        shown += f" (as {evidence['text']!r})"
    return shown + (" [hedged]" if evidence.get("hedged") else "")
