// The zone on a Leaflet map, drawn from the zone file alone: it needs no tile server and no
// internet. A deployment may set a tile URL (an official Chinese map service, say) and it
// is drawn underneath. Markers are SVG circles and class-styled labels: nothing needs an
// inline style, so the Content-Security-Policy can forbid them.

import * as L from "leaflet";
import type { PageConfig, Position, Zone, ZonePlace } from "./types";

const PLACE_COLOURS: Record<string, string> = {
  road: "#8d6e63",
  park: "#2e7d32",
  station_square: "#6a1b9a",
  school: "#f9a825",
  enterprise: "#1565c0",
  parking: "#546e7a",
  residential: "#00897b",
  other: "#757575",
};

export interface ZoneMapOptions {
  /** Show the names of the grids as permanent labels (the board); else on hover only. */
  gridLabels?: boolean;
  /** Draw only these places; all when absent. */
  places?: (place: ZonePlace) => boolean;
  /** A place drawn larger with its name always shown (the desk's own site). */
  highlight?: string;
  zoomControl?: boolean;
  /** The page sets its own view after making the map (the desk's site, the unit's job). */
  keepView?: boolean;
}

export function zoneMap(
  element: HTMLElement,
  zone: Zone,
  config: PageConfig,
  options: ZoneMapOptions = {},
): L.Map {
  const map = L.map(element, {
    zoomControl: options.zoomControl ?? true,
    attributionControl: config.tile_url !== null,
    preferCanvas: false,
    keyboard: true,
    zoomSnap: 0.25,
  });
  if (config.tile_url) {
    L.tileLayer(config.tile_url, { attribution: config.tile_attribution, maxZoom: 19 }).addTo(map);
  }
  const bounds = L.latLngBounds([]);
  for (const grid of zone.grids) {
    const ring = grid.polygon.map(([lat, lon]) => L.latLng(lat, lon));
    const polygon = L.polygon(ring, {
      color: "#37474f",
      weight: 1.5,
      fillColor: "#90a4ae",
      fillOpacity: 0.12,
      className: "zone-grid",
    }).addTo(map);
    polygon.bindTooltip(shortName(grid.name), {
      permanent: options.gridLabels ?? false,
      direction: "center",
      className: "grid-label",
    });
    bounds.extend(polygon.getBounds());
  }
  for (const place of zone.places) {
    if (options.places && !options.places(place)) continue;
    const own = place.id === options.highlight;
    const marker = L.circleMarker([place.position.lat, place.position.lon], {
      radius: own ? 10 : place.type === "enterprise" || place.type === "school" ? 4 : 5,
      color: PLACE_COLOURS[place.type] ?? "#757575",
      weight: 1,
      fillOpacity: 0.6,
      className: `zone-place place-${place.type}`,
    }).addTo(map);
    marker.bindTooltip(shortName(place.name), { className: own ? "grid-label" : "place-label", permanent: own });
    bounds.extend(marker.getLatLng());
  }
  const fit = (): void => {
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [12, 12] });
    else map.setView([31.7, 113.42], 12);
  };
  fit();
  // The page lays itself out after the map is made (panels fill in, a banner comes and goes):
  // follow the container's size, and fit the zone once the first layout is done.
  // Until the person moves the map, it keeps the whole zone in view.
  let moved = options.keepView ?? false;
  for (const event of ["pointerdown", "wheel", "keydown"]) {
    element.addEventListener(event, () => (moved = true), { once: true });
  }
  new ResizeObserver(() => {
    map.invalidateSize();
    if (!moved && element.clientHeight > 0) fit();
  }).observe(element);
  return map;
}

/** "城东新区第一网格(火车站片区) Chengdong grid 1, station area" in the page's language. */
export function shortName(name: string): string {
  const english = document.documentElement.lang === "en";
  const cut = name.search(/\s[A-Za-z]/);
  if (cut < 0) return name;
  return english ? name.slice(cut + 1) : name.slice(0, cut);
}

export function latLng(position: Position): L.LatLngExpression {
  return [position.lat, position.lon];
}

export { L };
