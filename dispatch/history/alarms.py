"""The raw alarms of the history, as desks, guards, sensors and the hotline would have sent them.

Each alarm is what the real sources write (docs/intake.md): a desk names its enterprise and a
spot, a guard its handheld and enterprise, a sensor its device and kind, the hotline the place
the caller named and a fix near it. Every one carries `idempotency_key =
"demo-history:<seed>:<yyyymm>-<n>"`, so demo alarms can be told apart in the record.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from dispatch.events import PlaceType, Position, RawAlarm, SensorKind, SourceKind
from dispatch.history.mix import VILLAGES, XIHE_GRIDS, Scenario
from dispatch.history.schedule import Call
from dispatch.zone import Place, Zone
from dispatch.zone.geo import ring_centroid

SURNAMES = "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗"
GIVEN = ("伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明")
SPOTS = ("1号门", "2号门", "北门", "东侧围墙", "3号仓库", "办公楼前", "停车棚", "车间")
HOTLINE = "hotline"  # the police-enterprise hotline's source id (simulator/principals.py)
METRES_PER_DEGREE_LAT = 111_320.0
METRES_PER_DEGREE_LON = 94_800.0  # at the zone's latitude


@dataclass(frozen=True, slots=True)
class Village:
    """A village of Xihe Town: a name and a point inside its grid (not a zone place)."""

    name: str
    grid_id: str
    position: Position


def villages_of(zone: Zone) -> dict[str, tuple[Village, ...]]:
    """Return the demo villages by grid, each at a point of its grid."""
    found: dict[str, list[Village]] = {grid_id: [] for grid_id in XIHE_GRIDS}
    for n, name in enumerate(VILLAGES):
        grid = zone.grid(XIHE_GRIDS[n % len(XIHE_GRIDS)])
        lat, lon = ring_centroid(grid.polygon)
        # Two villages per grid, either side of its centre; the centre when that falls outside.
        shift = 0.004 if n < len(XIHE_GRIDS) else -0.004
        position = Position(lat=round(lat + shift, 6), lon=round(lon + shift, 6))
        if zone.grid_at(position) != grid:
            position = Position(lat=round(lat, 6), lon=round(lon, 6))
        found[grid.id].append(Village(name, grid.id, position))
    return {grid_id: tuple(villages) for grid_id, villages in found.items()}


class AlarmMaker:
    """Turn planned calls into raw alarms of the zone's places and sources."""

    def __init__(self, zone: Zone, *, seed: int, namespace: uuid.UUID) -> None:
        self.zone = zone
        self.seed = seed
        self.namespace = namespace
        self.villages = villages_of(zone)
        self._places: dict[str, tuple[Place, ...]] = {}

    def places(self, scenario: Scenario) -> tuple[Place, ...]:
        """Return the zone places a scenario happens at."""
        key = ",".join(scenario.places)
        if key not in self._places:
            found: list[Place] = []
            for name in scenario.places:
                if name.startswith("type:"):
                    found.extend(self.zone.places_of_type(PlaceType(name.removeprefix("type:"))))
                else:
                    found.append(self.zone.place(name))
            self._places[key] = tuple(found)
        return self._places[key]

    def alarm(self, call: Call, key: str, rng: random.Random) -> RawAlarm:
        """Return the alarm of a planned call; key names it within the history."""
        scenario = call.scenario
        source = rng.choice(scenario.sources)
        fields: dict[str, Any] = {
            "alarm_id": uuid.uuid5(self.namespace, f"alarm:{key}"),
            "received_at": call.at,
            "source_kind": source,
            "idempotency_key": f"demo-history:{self.seed}:{key}",
        }
        if scenario.villages:
            village = rng.choice(self.villages[rng.choice(scenario.villages)])
            text = rng.choice(scenario.texts).format(place=village.name)
            near = _near(rng, village.position, 300.0)
            fields |= {"text": text, "place_name": village.name, "position": near}
            return RawAlarm(**(fields | {"source_id": HOTLINE} | caller(rng)))
        place = rng.choice(self.places(scenario))
        fields["text"] = rng.choice(scenario.texts).format(place=place.name)
        fields["place_id"] = place.id
        if place.type is PlaceType.ENTERPRISE:
            fields["enterprise_id"] = place.id
        if source is SourceKind.SENSOR:
            return RawAlarm(**(fields | self.device(scenario, place)))
        if source is SourceKind.DESK:
            desk = "desk-" + place.id.removeprefix("ent-")
            spot = {"place_name": rng.choice(SPOTS), "position": _near(rng, place.position, 150)}
            return RawAlarm(**(fields | {"source_id": desk} | spot | caller(rng)))
        if source is SourceKind.GUARD:
            guards = self.zone.guards_of(place.id)
            guard = rng.choice(guards).id if guards else "guard-" + place.id
            fix = {"position": _near(rng, place.position, 100.0)}
            return RawAlarm(**(fields | {"source_id": guard} | fix | caller(rng)))
        near = _near(rng, place.position, 300.0)
        return RawAlarm(**(fields | {"source_id": HOTLINE, "position": near} | caller(rng)))

    def device(self, scenario: Scenario, place: Place) -> dict[str, Any]:
        """Return the source fields of the scenario's sensor at place: registered, or named."""
        kind = str(scenario.sensor)
        registered = next(
            (d for d in self.zone.devices if d.kind == kind and d.place_id == place.id), None
        )
        # A registered device the zone places itself; the others name their place.
        source_id = registered.id if registered is not None else f"{kind}-{place.id}"[:64]
        known = kind in {k.value for k in SensorKind}
        return {"source_id": source_id, "sensor_kind": SensorKind(kind) if known else None}


def _near(rng: random.Random, at: Position, within_m: float) -> Position:
    return Position(
        lat=round(at.lat + rng.uniform(-within_m, within_m) / METRES_PER_DEGREE_LAT, 6),
        lon=round(at.lon + rng.uniform(-within_m, within_m) / METRES_PER_DEGREE_LON, 6),
        accuracy_m=float(rng.choice((5, 10, 15, 30))),
    )


def caller(rng: random.Random) -> dict[str, str]:
    """Return a caller's name and number."""
    name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
    phone = f"+86 13{rng.randint(0, 9)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
    return {"reporter_name": name, "reporter_phone": phone}
