"""The benchmark's workloads: alarms and unit reports in the demo zone, built before any run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import h3

from dispatch.classify import Rules
from dispatch.events import (
    PlaceType,
    Position,
    RawAlarm,
    SensorKind,
    SourceKind,
    UnitAvailability,
    UnitStatus,
    encode,
    key_of,
)
from dispatch.locate import MERGE_CELL_RESOLUTION
from dispatch.policy import policy_of
from dispatch.triage import OpenMerge, merge_into, triage
from dispatch.zone import UnitKind, Zone

M_PER_DEG_LAT = 111_195.0
# The mixed workload replays a very busy hour at once: alarms received this far apart, so that
# repeats of one merge cell and kind fall outside the 10-minute merge window and open incidents
# of their own. The storm's alarms all fall inside one window.
MIXED_STEP = timedelta(milliseconds=200)
STORM_STEP = timedelta(milliseconds=10)
# In the mixed workload, every 20th alarm names a zone place, and the alarm before each 20th
# repeats the alarm just before it: it merges.
EVERY = 20

# Five kinds of alarm, in Chinese and English; none names a place of the zone.
TEXTS: tuple[tuple[str, ...], ...] = (
    ("仓库着火了,冒出浓烟", "smoke and flames coming out of a shed roof", "路边一辆车起火"),
    ("有人偷电动车", "my bicycle was stolen from the rack", "店里被盗,收银台少了钱"),
    ("两个人在门口打架", "two men fighting outside a shop", "a brawl at a barbecue stall"),
    ("两户邻居因为噪音发生纠纷", "neighbours in a loud argument over parking", "工人讨薪争执"),
    ("有人翻墙进入院子", "an intruder climbing over the back fence", "仓库门被撬锁"),
)


@dataclass(frozen=True)
class Workload:
    """Alarms as (key, value) records, and how many incidents they should open."""

    name: str
    records: tuple[tuple[bytes, bytes], ...]
    incidents: int


def _alarm(
    n: int, kind: int, at: datetime, source: tuple[SourceKind, str], **where: Any
) -> RawAlarm:
    text = TEXTS[kind][n % len(TEXTS[kind])]
    source_kind, source_id = source
    return RawAlarm(
        alarm_id=uuid.uuid4(),
        received_at=at,
        text=text,
        source_kind=source_kind,
        source_id=source_id,
        **where,
    )


def _at_place(zone: Zone, n: int, kind: int, at: datetime, storm: bool) -> RawAlarm:
    """An alarm naming the n-th place as its source would: enterprise desk or sensor, id, name."""
    place = zone.places[n % len(zone.places)]
    if place.type is PlaceType.ENTERPRISE and storm:
        sensor = (SourceKind.SENSOR, f"anti-climb-{n % 3}-{place.id}"[:64])
        return _alarm(
            n, kind, at, sensor, sensor_kind=SensorKind.ANTI_CLIMB, enterprise_id=place.id
        )
    if place.type is PlaceType.ENTERPRISE:
        return _alarm(n, kind, at, (SourceKind.DESK, f"desk-{place.id}"), enterprise_id=place.id)
    if n % 2:
        return _alarm(n, kind, at, (SourceKind.HOTLINE, "hotline-1"), place_id=place.id)
    return _alarm(n, kind, at, (SourceKind.HOTLINE, "hotline-2"), place_name=place.name)


def _at_position(zone: Zone, n: int, kind: int, at: datetime, position: Position) -> RawAlarm:
    """An alarm with a device fix: a guard's handheld, a camera, or a caller's phone."""
    if n % 3 == 0:
        guards = [u.id for u in zone.units if u.kind is UnitKind.GUARD]
        return _alarm(n, kind, at, (SourceKind.GUARD, guards[n % len(guards)]), position=position)
    if n % 3 == 1:
        camera = (SourceKind.SENSOR, f"cam-{n % 800:04d}")
        return _alarm(n, kind, at, camera, sensor_kind=SensorKind.CAMERA_A, position=position)
    return _alarm(n, kind, at, (SourceKind.HOTLINE, f"hotline-{n % 8}"), position=position)


def merge_cells(zone: Zone) -> list[Position]:
    """Return the centre of every h3 merge cell inside the zone's grids."""
    cells: set[str] = set()
    for grid in zone.grids:
        shape = h3.LatLngPoly(list(grid.polygon))
        cells.update(h3.polygon_to_cells(shape, MERGE_CELL_RESOLUTION))
    centres = (h3.cell_to_latlng(cell) for cell in sorted(cells))
    return [Position(lat=lat, lon=lon, accuracy_m=10.0) for lat, lon in centres]


def build_workload(name: str, zone: Zone, rules: Rules, count: int) -> Workload:
    """Make count alarms; `mixed` mostly opens incidents, `storm` repeats places."""
    storm = name == "storm"
    step = STORM_STEP if storm else MIXED_STEP
    start = datetime.now(UTC) - step * count
    cells = merge_cells(zone)
    alarms: list[RawAlarm] = []
    fixes = 0
    for n in range(count):
        at = start + step * n
        if storm:
            alarms.append(_at_place(zone, n, n % len(TEXTS), at, storm=True))
        elif n % EVERY == 0:
            k = n // EVERY
            alarms.append(_at_place(zone, k, k % len(TEXTS), at, storm=False))
        elif n % EVERY == EVERY - 1:
            # Sent again by the same source (its partition, so in order): it must merge.
            again = {"alarm_id": uuid.uuid4(), "received_at": at}
            alarms.append(alarms[-1].model_copy(update=again))
        else:
            # Every cell with every kind before any pair repeats: 3,740 alarms, over 10 minutes.
            kind, cell = divmod(fixes, len(cells))
            alarms.append(_at_position(zone, n, kind % len(TEXTS), at, cells[cell]))
            fixes += 1
    # Count the incidents the merge step should open; this also warms the caches of locate
    # and classify before any variant is timed.
    now = datetime.now(UTC)
    merges: dict[str, OpenMerge] = {}
    opened_count = 0
    for alarm in alarms:
        located = triage(zone, rules, alarm, now=now)
        current = merges.get(located.merge_key)
        _, opened = merge_into(located, current, window=policy_of(zone).merge_window)
        if opened is not None:
            merges[located.merge_key] = opened
            opened_count += 1
    records = tuple((key_of(a), encode(a)) for a in alarms)
    return Workload(name=name, records=records, incidents=opened_count)


def unit_reports(zone: Zone) -> list[tuple[bytes, bytes]]:
    """Report every unit available, a little north of where it waits, as of now."""
    out = []
    for n, unit in enumerate(zone.units):
        home = zone.home_position(unit)
        status = UnitStatus(
            event_id=uuid.uuid4(),
            unit_id=unit.id,
            status=UnitAvailability.AVAILABLE,
            position=Position(lat=home.lat + (50 + 7 * n) / M_PER_DEG_LAT, lon=home.lon),
            reported_at=datetime.now(UTC),
        )
        out.append((key_of(status), encode(status)))
    return out


# -- the observer: a separate process that reads outputs and keeps units reporting ----------
