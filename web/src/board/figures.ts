// Today's figures against the targets: processing (received to dispatched) within 60 s, and
// arrival (received to on scene) against the Chinese norms, each grid by its own: urban grids
// within 5 minutes, suburban grids within 10 (the zone file's `area`, urban when unset, as
// `dispatch report` counts them; an incident outside every grid is held to neither). With a
// small bar chart of incidents per hour over the last hours. Counted from the read API's
// incidents of today when it answers, else from what the board has seen.

import type { Api } from "../common/api";
import { byId, clear, h } from "../common/dom";
import { t } from "../common/i18n";
import type { ApiIncident, GridArea, Incident, Position, Zone, ZoneGrid } from "../common/types";

const HOURS = 8;
const SVG = "http://www.w3.org/2000/svg";
/** The arrival norm of each kind of grid, in seconds. */
export const ARRIVAL_NORM_S: Record<GridArea, number> = { urban: 300, suburban: 600 };

interface Times {
  received_at?: string | null;
  dispatched_at?: string | null;
  on_scene_at?: string | null;
  area: GridArea | null;
}

function share(items: Times[], from: "received_at", to: "dispatched_at" | "on_scene_at", limitS: (item: Times) => number): [number, number] {
  const measured = items.filter((i) => i[from] && i[to]);
  const within = measured.filter((i) => (Date.parse(i[to]!) - Date.parse(i[from]!)) / 1000 <= limitS(i));
  return [within.length, measured.length];
}

/** Whether a point lies inside a grid's polygon (ray casting over its [lat, lon] corners). */
function inside(grid: ZoneGrid, p: Position): boolean {
  let hit = false;
  const ring = grid.polygon;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [latI, lonI] = ring[i]!;
    const [latJ, lonJ] = ring[j]!;
    if (latI > p.lat !== latJ > p.lat && p.lon < ((lonJ - lonI) * (p.lat - latI)) / (latJ - latI) + lonI) hit = !hit;
  }
  return hit;
}

/** The grid an incident belongs to: the record's, else the grid at its position. */
export function gridOf(zone: Zone, gridId: string | null | undefined, position: Position | null | undefined): ZoneGrid | null {
  if (gridId) return zone.grids.find((g) => g.id === gridId) ?? null;
  return position ? (zone.grids.find((g) => inside(g, position)) ?? null) : null;
}

/** The norm a grid is held to; unset is urban, the stricter. */
export function areaOf(grid: ZoneGrid | null): GridArea | null {
  return grid === null ? null : (grid.area ?? "urban");
}

export async function todaysIncidents(api: Api): Promise<ApiIncident[] | null> {
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const out: ApiIncident[] = [];
  let cursor: string | null = null;
  try {
    for (let page = 0; page < 10; page++) {
      const query = `/v1/incidents?from=${encodeURIComponent(midnight.toISOString())}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const body: { items?: ApiIncident[]; incidents?: ApiIncident[]; next_cursor?: string | null } = await api.get(query);
      out.push(...(body.items ?? body.incidents ?? []));
      cursor = body.next_cursor ?? null;
      if (!cursor) break;
    }
    return out;
  } catch {
    return null;
  }
}

export function drawFigures(zone: Zone, recorded: ApiIncident[] | null, seen: Incident[]): void {
  const items: Times[] = recorded
    ? recorded.map((i) => ({ ...i, area: areaOf(gridOf(zone, i.grid_id, i.position)) }))
    : seen.map((i) => ({ ...i.timing, area: areaOf(gridOf(zone, i.grid_id, i.position)) }));
  const box = byId("figures");
  clear(box);
  const urban = items.filter((i) => i.area === "urban");
  const suburban = items.filter((i) => i.area === "suburban");
  const rows: [string, string, [number, number]][] = [
    ["processing", "board.processing", share(items, "received_at", "dispatched_at", () => 60)],
    ["arrival_urban", "board.arrival_urban", share(urban, "received_at", "on_scene_at", () => ARRIVAL_NORM_S.urban)],
    ["arrival_suburban", "board.arrival_suburban", share(suburban, "received_at", "on_scene_at", () => ARRIVAL_NORM_S.suburban)],
  ];
  for (const [name, label, [within, of]] of rows) {
    const pct = of === 0 ? "—" : `${Math.round((100 * within) / of)}%`;
    box.append(h("div", { class: "figure", "data-figure": name, "data-within": String(within), "data-of": String(of) },
      h("span", { class: "figure-label" }, t(label)), h("b", {}, pct), h("span", { class: "muted" }, ` ${within}/${of}`)));
  }
  box.append(h("div", { class: "figure-label" }, t("board.last_hours")), chart(items));
}

function chart(items: Times[]): SVGSVGElement {
  const now = Date.now();
  const counts = new Array<number>(HOURS).fill(0);
  for (const item of items) {
    if (!item.received_at) continue;
    const hoursAgo = Math.floor((now - Date.parse(item.received_at)) / 3600000);
    if (hoursAgo >= 0 && hoursAgo < HOURS) counts[HOURS - 1 - hoursAgo]! += 1;
  }
  const max = Math.max(1, ...counts);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${HOURS * 20} 60`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  counts.forEach((count, i) => {
    const height = (count / max) * 44;
    const bar = document.createElementNS(SVG, "rect");
    bar.setAttribute("x", String(i * 20 + 3));
    bar.setAttribute("y", String(48 - height));
    bar.setAttribute("width", "14");
    bar.setAttribute("height", String(height));
    bar.setAttribute("class", "bar");
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", String(i * 20 + 10));
    label.setAttribute("y", "58");
    label.setAttribute("class", "bar-label");
    label.textContent = String(count);
    svg.append(bar, label);
  });
  return svg;
}
