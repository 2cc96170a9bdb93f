"""Resolve where an alarm happened: a position, a grid and, when known, a zone place."""

from __future__ import annotations

from dataclasses import dataclass

import h3

from dispatch.events import PlaceType, Position, RawAlarm
from dispatch.zone import Place, UnknownZoneId, Zone

# h3 resolution 9 cells are about 0.1 km² (edge ≈ 174 m): alarms without a known place merge
# when they fall in the same cell, which is about the spread of one incident's reports.
MERGE_CELL_RESOLUTION = 9


class LocationUnresolved(ValueError):
    """Raised when an alarm gives no position and names no place the zone knows."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where an alarm is, as far as the zone can tell."""

    position: Position
    grid_id: str | None
    place: Place | None

    @property
    def place_type(self) -> PlaceType:
        """Return the type of the place, or `other` for a bare position."""
        return self.place.type if self.place is not None else PlaceType.OTHER

    @property
    def school_id(self) -> str | None:
        """Return the school's place id when the alarm is at a school."""
        return self.place.id if self.place and self.place.type is PlaceType.SCHOOL else None

    @property
    def enterprise_id(self) -> str | None:
        """Return the enterprise's place id when the alarm is at an enterprise."""
        is_enterprise = self.place and self.place.type is PlaceType.ENTERPRISE
        return self.place.id if is_enterprise and self.place else None


def _known(zone: Zone, place_id: str | None) -> Place | None:
    if place_id is None:
        return None
    try:
        return zone.place(place_id)
    except UnknownZoneId:
        return None


def locate(zone: Zone, alarm: RawAlarm) -> Location:
    """Resolve an alarm: named place, then place name, enterprise, text mention, position."""
    place = (
        _known(zone, alarm.place_id)
        or (zone.find_place_by_name(alarm.place_name) if alarm.place_name else None)
        or (zone.find_place_in_text(alarm.place_name) if alarm.place_name else None)
        or _known(zone, alarm.enterprise_id)
        or _mentioned(zone, alarm)
    )
    # A device's own fix is more precise than the place's reference point.
    position = alarm.position or (place.position if place else None)
    if position is None:
        raise LocationUnresolved(
            "no position, and neither place_id, place_name, enterprise_id nor the text names a "
            "place this zone knows"
        )
    grid = zone.grid_at(position)
    return Location(position=position, grid_id=grid.id if grid else None, place=place)


def _mentioned(zone: Zone, alarm: RawAlarm) -> Place | None:
    # An alarm raised for one enterprise (its desk, its guards) is never moved to another
    # enterprise because its text names one: that would put it on the other's board.
    place = zone.find_place_in_text(alarm.text)
    if place is None or alarm.enterprise_id is None or place.type is not PlaceType.ENTERPRISE:
        return place
    return place if place.id == alarm.enterprise_id else None


def merge_key(category: str, location: Location) -> str:
    """Return the key under which repeated alarms of one place and kind merge."""
    if location.place is not None:
        return f"{category}@{location.place.id}"
    cell = h3.latlng_to_cell(location.position.lat, location.position.lon, MERGE_CELL_RESOLUTION)
    return f"{category}@h3:{cell}"
