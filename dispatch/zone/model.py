"""The zone: grids, key places, teams and units, validated as one consistent whole."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from dispatch.events import Capability, EventModel, Identifier, Name, PlaceType, Position
from dispatch.zone.geo import (
    Vertex,
    bounding_box,
    open_ring,
    point_in_polygon,
    ring_centroid,
    ring_problem,
)
from dispatch.zone.policy import PolicyTable
from dispatch.zone.queries import NameIndex, normalize_name

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
MIN_MATCH_CHARS = 2
_T = TypeVar("_T")


def _at_least_one(items: tuple[_T, ...]) -> tuple[_T, ...]:
    # Not min_length: pydantic counts only the items that validated, so one bad entry in a
    # list of one would also be reported as "too short", a second, misleading error.
    if not items:
        raise PydanticCustomError("too_short", "give at least one")
    return items


NonEmpty = AfterValidator(_at_least_one)


class UnitKind(StrEnum):
    """What a unit is, which decides where it lives and what it is sent to first."""

    PATROL = "patrol"
    SCHOOL_OFFICER = "school_officer"
    GUARD = "guard"
    FIRE = "fire"
    MEDICAL = "medical"
    MEDIATOR = "mediator"


class GridArea(StrEnum):
    """Whether a grid is urban or suburban: it sets the arrival norm the reports hold it to."""

    URBAN = "urban"
    SUBURBAN = "suburban"


def _known_time_zone(name: str) -> str:
    # Checked on load, so a misspelt name is a zone-file error, not a failed report later.
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "time_zone_unknown",
            "unknown time zone {name}: give an IANA name such as 'Asia/Shanghai'",
            {"name": repr(name)},
        ) from None
    return name


TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_known_time_zone)]


class Team(EventModel):
    """A named group of units, such as one professional patrol team."""

    id: Identifier
    name: Name


class Grid(EventModel):
    """A grid (网格): a polygon and the patrol units responsible for it."""

    id: Identifier
    name: Name
    district: Name | None = None
    # The Chinese arrival norms: urban 5 min, suburban 10 min; unset is held to the stricter.
    area: GridArea = GridArea.URBAN
    # ring_problem counts the corners, so a bad corner is not also reported as too few.
    polygon: tuple[tuple[Latitude, Longitude], ...] = Field(max_length=1000)
    patrol_unit_ids: Annotated[tuple[Identifier, ...], Field(max_length=50), NonEmpty]

    @field_validator("polygon")
    @classmethod
    def _usable_ring(cls, polygon: tuple[Vertex, ...]) -> tuple[Vertex, ...]:
        problem = ring_problem(polygon)
        if problem is not None:
            raise PydanticCustomError("polygon_invalid", "{problem}", {"problem": problem})
        # Stored open, so every consumer sees each corner exactly once.
        return open_ring(polygon)


class Place(EventModel):
    """A key place alarms may name: a road segment, park, square, school, enterprise, ..."""

    id: Identifier
    name: Name
    aliases: tuple[Name, ...] = Field(default=(), max_length=20)
    type: PlaceType
    position: Position

    @field_validator("name", "aliases")
    @classmethod
    def _long_enough_to_match(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        # A one-character name would be "found" inside almost any alarm text.
        for name in (value,) if isinstance(value, str) else value:
            if len(normalize_name(name)) < MIN_MATCH_CHARS:
                raise PydanticCustomError(
                    "name_too_short",
                    "{name} is too short to recognise in alarm text (2 characters at least)",
                    {"name": repr(name)},
                )
        return value

    @property
    def names(self) -> tuple[str, ...]:
        """Return the name followed by every alias."""
        return (self.name, *self.aliases)


class Unit(EventModel):
    """A unit that can be sent: where it lives, what it can do, how fast it moves."""

    id: Identifier
    name: Name
    kind: UnitKind
    team_id: Identifier | None = None
    capabilities: Annotated[tuple[Capability, ...], Field(max_length=16), NonEmpty]
    home_grid_id: Identifier | None = None
    home_place_id: Identifier | None = None
    speed_kmh: float = Field(gt=0, le=300, allow_inf_nan=False)
    base: Position | None = None

    @model_validator(mode="after")
    def _exactly_one_home(self) -> Self:
        if (self.home_grid_id is None) == (self.home_place_id is None):
            raise PydanticCustomError(
                "home_required", "give exactly one of home_grid_id and home_place_id"
            )
        return self


DeviceKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
"""What a device is: the sensor kinds of events (`anti_climb`, `camera_a`, ...) and others
the zone knows, such as `smoke`, `heat`, `gas` and `panic_button`."""


class Device(EventModel):
    """A registered alarm device: a sensor alarm without a kind takes this one (docs/zone.md)."""

    id: Identifier
    kind: DeviceKind
    name: Name | None = None
    place_id: Identifier | None = None
    position: Position | None = None


@dataclass(frozen=True, slots=True)
class ZoneProblem:
    """One thing wrong with a zone: where (a path into the file), what, and whose id."""

    loc: tuple[str | int, ...]
    message: str
    entity_id: str | None = None

    def __str__(self) -> str:
        where = format_loc(self.loc)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} (id {self.entity_id!r})" if self.entity_id else text


def format_loc(loc: Iterable[str | int]) -> str:
    """Render a path into the file as `units[12].speed_kmh`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class ZoneIntegrityError(ValueError):
    """Raised when a zone's entities are fine alone but do not fit together."""

    def __init__(self, problems: Sequence[ZoneProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


class UnknownZoneId(LookupError):
    """Raised when a query names a grid, place or unit the zone does not have."""


class Zone(EventModel):
    """A whole zone file: teams, grids, places and units that refer to one another."""

    schema_version: Literal[1] = 1
    id: Identifier
    name: Name
    # Where the zone's local months and hours of day are counted (docs/reports.md).
    timezone: TimeZoneName = "UTC"
    teams: tuple[Team, ...] = Field(default=(), max_length=1000)
    grids: Annotated[tuple[Grid, ...], Field(max_length=10_000), NonEmpty]
    places: tuple[Place, ...] = Field(default=(), max_length=100_000)
    units: Annotated[tuple[Unit, ...], Field(max_length=100_000), NonEmpty]
    devices: tuple[Device, ...] = Field(default=(), max_length=100_000)
    policy: PolicyTable = Field(default_factory=PolicyTable)

    _grids: dict[str, Grid] = PrivateAttr(default_factory=dict)
    _places: dict[str, Place] = PrivateAttr(default_factory=dict)
    _units: dict[str, Unit] = PrivateAttr(default_factory=dict)
    _devices: dict[str, Device] = PrivateAttr(default_factory=dict)
    _names: NameIndex[Place] = PrivateAttr(default_factory=lambda: NameIndex(()))
    # Each grid with its bounding box, so grid_at tests only the polygons that can hold a point.
    _grid_boxes: list[tuple[tuple[float, float, float, float], Grid]] = PrivateAttr(
        default_factory=list
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = _unique_ids(self) + _reference_problems(self) + _name_clashes(self)
        if problems:
            raise ZoneIntegrityError(problems)
        self._grids = {grid.id: grid for grid in self.grids}
        self._places = {place.id: place for place in self.places}
        self._units = {unit.id: unit for unit in self.units}
        self._devices = {device.id: device for device in self.devices}
        self._names = NameIndex(self.places)
        self._grid_boxes = [(bounding_box(grid.polygon), grid) for grid in self.grids]
        return self

    def grid(self, grid_id: str) -> Grid:
        """Return the grid with this id; raise UnknownZoneId if there is none."""
        return _lookup(self._grids, grid_id, "grid")

    def place(self, place_id: str) -> Place:
        """Return the place with this id; raise UnknownZoneId if there is none."""
        return _lookup(self._places, place_id, "place")

    def unit(self, unit_id: str) -> Unit:
        """Return the unit with this id; raise UnknownZoneId if there is none."""
        return _lookup(self._units, unit_id, "unit")

    def device(self, device_id: str) -> Device | None:
        """Return the registered device with this id (a sensor's source_id), or None."""
        return self._devices.get(device_id)

    def grid_at(self, position: Position) -> Grid | None:
        """Return the grid containing the position (first in file order), or None."""
        lat, lon = position.lat, position.lon
        for (lat_min, lat_max, lon_min, lon_max), grid in self._grid_boxes:
            inside_box = lat_min <= lat <= lat_max and lon_min <= lon <= lon_max
            if inside_box and point_in_polygon(position, grid.polygon):
                return grid
        return None

    def find_place_by_name(self, text: str) -> Place | None:
        """Return the place whose name or alias is the text, ignoring case and spaces."""
        return self._names.exact(text)

    def find_place_in_text(self, text: str) -> Place | None:
        """Return the place whose name occurs in a free text, longest name first."""
        return self._names.within(text)

    def places_of_type(self, place_type: PlaceType) -> tuple[Place, ...]:
        """Return every place of one type, in file order."""
        return tuple(place for place in self.places if place.type is place_type)

    def units_of_kind(self, kind: UnitKind) -> tuple[Unit, ...]:
        """Return every unit of one kind, in file order."""
        return tuple(unit for unit in self.units if unit.kind is kind)

    def units_of_team(self, team_id: str) -> tuple[Unit, ...]:
        """Return every unit of one team, in file order."""
        return tuple(unit for unit in self.units if unit.team_id == team_id)

    def school_officers_for(self, place_id: str) -> tuple[Unit, ...]:
        """Return the school officers stationed at a school place (一校一园一警)."""
        return self._living_at(place_id, UnitKind.SCHOOL_OFFICER)

    def guards_of(self, enterprise_place_id: str) -> tuple[Unit, ...]:
        """Return the guard units of an enterprise place."""
        return self._living_at(enterprise_place_id, UnitKind.GUARD)

    def patrols_for_grid(self, grid_id: str) -> tuple[Unit, ...]:
        """Return the patrol units responsible for a grid, in the order the file lists them."""
        return tuple(self._units[unit_id] for unit_id in self.grid(grid_id).patrol_unit_ids)

    def home_position(self, unit: Unit) -> Position:
        """Return where a unit waits: its base, else its home place, else its grid's centre."""
        if unit.base is not None:
            return unit.base
        if unit.home_place_id is not None:
            return self._places[unit.home_place_id].position
        lat, lon = ring_centroid(self._grids[str(unit.home_grid_id)].polygon)
        return Position(lat=lat, lon=lon)

    def _living_at(self, place_id: str, kind: UnitKind) -> tuple[Unit, ...]:
        self.place(place_id)
        return tuple(u for u in self.units if u.kind is kind and u.home_place_id == place_id)


def _lookup(table: dict[str, _T], entity_id: str, what: str) -> _T:
    try:
        return table[entity_id]
    except KeyError:
        raise UnknownZoneId(f"the zone has no {what} {entity_id!r}") from None


def _unique_ids(zone: Zone) -> list[ZoneProblem]:
    problems: list[ZoneProblem] = []
    collections: dict[str, Sequence[Team | Grid | Place | Unit | Device]] = {
        "teams": zone.teams,
        "grids": zone.grids,
        "places": zone.places,
        "units": zone.units,
        "devices": zone.devices,
    }
    for name, entities in collections.items():
        first: dict[str, int] = {}
        for index, entity in enumerate(entities):
            if entity.id in first:
                message = f"duplicate id, first used by {name}[{first[entity.id]}]"
                problems.append(ZoneProblem((name, index, "id"), message, entity.id))
            first.setdefault(entity.id, index)
    return problems


# Where each kind of unit must live, and what a home place must be.
_HOME_RULES: dict[UnitKind, tuple[Literal["grid", "place"], PlaceType | None]] = {
    UnitKind.PATROL: ("grid", None),
    UnitKind.SCHOOL_OFFICER: ("place", PlaceType.SCHOOL),
    UnitKind.GUARD: ("place", PlaceType.ENTERPRISE),
}


def _reference_problems(zone: Zone) -> list[ZoneProblem]:
    team_ids = {team.id for team in zone.teams}
    grid_ids = {grid.id for grid in zone.grids}
    # The first entry of a duplicated id is the one references resolve to, as in _unique_ids.
    places = {place.id: place for place in reversed(zone.places)}
    units = {unit.id: unit for unit in reversed(zone.units)}
    problems: list[ZoneProblem] = []
    for i, grid in enumerate(zone.grids):
        for j, unit_id in enumerate(grid.patrol_unit_ids):
            loc = ("grids", i, "patrol_unit_ids", j)
            if unit_id not in units:
                problems.append(ZoneProblem(loc, f"no unit {unit_id!r}", grid.id))
            elif units[unit_id].kind is not UnitKind.PATROL:
                message = f"unit {unit_id!r} is a {units[unit_id].kind}, not a patrol"
                problems.append(ZoneProblem(loc, message, grid.id))
            elif unit_id in grid.patrol_unit_ids[:j]:
                problems.append(ZoneProblem(loc, f"unit {unit_id!r} listed twice", grid.id))
    for i, unit in enumerate(zone.units):
        for field, message in _unit_problems(unit, team_ids, grid_ids, places):
            problems.append(ZoneProblem(("units", i, field), message, unit.id))
    for i, device in enumerate(zone.devices):
        if device.place_id is not None and device.place_id not in places:
            message = f"no place {device.place_id!r}"
            problems.append(ZoneProblem(("devices", i, "place_id"), message, device.id))
    return problems


def _unit_problems(
    unit: Unit, team_ids: set[str], grid_ids: set[str], places: dict[str, Place]
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if unit.team_id is not None and unit.team_id not in team_ids:
        problems.append(("team_id", f"no team {unit.team_id!r}"))
    if unit.home_grid_id is not None and unit.home_grid_id not in grid_ids:
        problems.append(("home_grid_id", f"no grid {unit.home_grid_id!r}"))
    if unit.home_place_id is not None and unit.home_place_id not in places:
        problems.append(("home_place_id", f"no place {unit.home_place_id!r}"))
    home, place_type = _HOME_RULES.get(unit.kind, (None, None))
    if home == "grid" and unit.home_grid_id is None:
        problems.append(("home_grid_id", f"a {unit.kind} unit lives in a grid: set home_grid_id"))
    elif home == "place" and unit.home_place_id is None:
        message = f"a {unit.kind} unit lives at a place of type {place_type}: set home_place_id"
        problems.append(("home_place_id", message))
    elif place_type is not None and unit.home_place_id is not None:
        home_place = places.get(unit.home_place_id)
        if home_place is not None and home_place.type is not place_type:
            needs = f"a {unit.kind} needs one of type {place_type}"
            message = f"place {home_place.id!r} is of type {home_place.type}; {needs}"
            problems.append(("home_place_id", message))
    return problems


def _name_clashes(zone: Zone) -> list[ZoneProblem]:
    owner: dict[str, str] = {}
    problems: list[ZoneProblem] = []
    for i, place in enumerate(zone.places):
        for j, name in enumerate(place.names):
            key = normalize_name(name)
            other = owner.setdefault(key, place.id)
            if other != place.id:
                loc = ("places", i, "name") if j == 0 else ("places", i, "aliases", j - 1)
                message = f"{name!r} already names place {other!r}; alarm text would be ambiguous"
                problems.append(ZoneProblem(loc, message, place.id))
    return problems
