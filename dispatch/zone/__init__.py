"""The zone model: grids, key places and units of one district, loaded from a TOML file."""

from dispatch.zone.geo import (
    EARTH_RADIUS_M,
    LatLon,
    Point,
    Vertex,
    haversine_m,
    point_in_polygon,
    ring_area_deg2,
    ring_centroid,
    ring_problem,
)
from dispatch.zone.loader import DEMO_ZONE_FILE, ZoneFileError, default_zone_path, load_zone
from dispatch.zone.model import (
    Device,
    DeviceKind,
    Grid,
    GridArea,
    Place,
    Team,
    Unit,
    UnitKind,
    UnknownZoneId,
    Zone,
    ZoneIntegrityError,
    ZoneProblem,
)
from dispatch.zone.queries import NameIndex, normalize_name

__all__ = [
    "DEMO_ZONE_FILE",
    "EARTH_RADIUS_M",
    "Device",
    "DeviceKind",
    "Grid",
    "GridArea",
    "LatLon",
    "NameIndex",
    "Place",
    "Point",
    "Team",
    "Unit",
    "UnitKind",
    "UnknownZoneId",
    "Vertex",
    "Zone",
    "ZoneFileError",
    "ZoneIntegrityError",
    "ZoneProblem",
    "default_zone_path",
    "haversine_m",
    "load_zone",
    "normalize_name",
    "point_in_polygon",
    "ring_area_deg2",
    "ring_centroid",
    "ring_problem",
]
