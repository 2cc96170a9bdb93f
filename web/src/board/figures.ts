// Today's figures against the targets: processing (received to dispatched) within 60 s, and
// arrival (received to on scene) within 5 and 10 minutes (the Chinese urban and suburban
// norms), with a small bar chart of incidents per hour over the last hours. Counted from
// the read API's incidents of today when it answers, else from what the board has seen.

import type { Api } from "../common/api";
import { byId, clear, h } from "../common/dom";
import { t } from "../common/i18n";
import type { ApiIncident, Incident } from "../common/types";

const HOURS = 8;
const SVG = "http://www.w3.org/2000/svg";

interface Times {
  received_at?: string | null;
  dispatched_at?: string | null;
  on_scene_at?: string | null;
}

function share(items: Times[], from: keyof Times, to: keyof Times, limitS: number): [number, number] {
  const measured = items.filter((i) => i[from] && i[to]);
  const within = measured.filter((i) => (Date.parse(i[to]!) - Date.parse(i[from]!)) / 1000 <= limitS);
  return [within.length, measured.length];
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

export function drawFigures(recorded: ApiIncident[] | null, seen: Incident[]): void {
  const items: Times[] = recorded ?? seen.map((i) => i.timing);
  const box = byId("figures");
  clear(box);
  const rows: [string, [number, number]][] = [
    ["board.processing", share(items, "received_at", "dispatched_at", 60)],
    ["board.arrival_urban", share(items, "received_at", "on_scene_at", 300)],
    ["board.arrival_suburban", share(items, "received_at", "on_scene_at", 600)],
  ];
  for (const [label, [within, of]] of rows) {
    const pct = of === 0 ? "—" : `${Math.round((100 * within) / of)}%`;
    box.append(h("div", { class: "figure" }, h("span", { class: "figure-label" }, t(label)), h("b", {}, pct), h("span", { class: "muted" }, ` ${within}/${of}`)));
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
