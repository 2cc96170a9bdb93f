// The commander's live board: the zone's map with units and incidents, the incident queue
// with live timers and every party, decisions with confirmation, the timeline on click and
// today's figures. Readable on a wall screen; every control reachable by keyboard
// (arrows move through the queue, Enter opens the timeline, a/r/c/x the decisions, v a
// unit's answer given by radio, p placing an alarm the zone could not on the map).

import { Api } from "../common/api";
import { Unauthorised, loadConfig, loadZone } from "../common/config";
import { byId, clear, h } from "../common/dom";
import { duration, secondsSince } from "../common/format";
import { languageButton, onLangChange, t, translateStatic } from "../common/i18n";
import { L, latLng, shortName, zoneMap } from "../common/map";
import { refusedMessage, signIn, signOut } from "../common/signin";
import { Channel, type ConnectionState } from "../common/socket";
import { alertTone, unlockSound } from "../common/sound";
import type { ApiIncident, ApiUnit, Incident, PageConfig, ServerFrame, Zone } from "../common/types";
import { type BoardAction, type CommandAction, Commands, answerable } from "./actions";
import { drawFigures, todaysIncidents } from "./figures";
import { queueRow, tickTimers, unitName } from "./queue";
import { Placing, needsPlace } from "./placing";
import { BoardState, needsDecision } from "./state";
import { showTimeline } from "./timeline";

const UNIT_COLOURS: Record<string, string> = {
  available: "#2e7d32",
  assigned: "#ef6c00",
  busy: "#c62828",
  off_duty: "#9e9e9e",
};
const PRIORITY_COLOURS: Record<string, string> = { P1: "#b71c1c", P2: "#e65100", P3: "#f9a825", P4: "#1565c0" };
const KEYS: Record<string, BoardAction | "place"> = { a: "assign", r: "reassign", c: "cancel", x: "close", v: "answer", p: "place" };
const FIGURES_EVERY_MS = 60000;

class Board {
  private state = new BoardState();
  private channel!: Channel;
  private api: Api;
  private commands: Commands;
  private placing!: Placing;
  private map!: L.Map;
  private unitLayer!: L.LayerGroup;
  private incidentLayer!: L.LayerGroup;
  private selected: string | null = null;
  private principalId = "";
  private drawPending = false;
  private escalated = new Set<string>();
  private snapshotStarted = false;

  constructor(
    private readonly token: string,
    private readonly config: PageConfig,
    private readonly zone: Zone,
  ) {
    this.api = new Api(config.intake_url, token);
    this.commands = new Commands(() => this.channel, this.state, zone, () => this.principalId);
  }

  start(): void {
    this.map = zoneMap(byId("map"), this.zone, this.config, { gridLabels: true });
    this.incidentLayer = L.layerGroup().addTo(this.map);
    this.unitLayer = L.layerGroup().addTo(this.map);
    this.placing = new Placing(this.map, this.api, this.zone);
    this.channel = new Channel(this.token, {
      onWelcome: (welcome) => {
        this.principalId = welcome.principal_id;
        byId("who").textContent = welcome.principal_id;
        // Connected (and in the fan-out) first, then the snapshot: see BoardState.
        if (!this.snapshotStarted) {
          this.snapshotStarted = true;
          void this.loadSnapshot();
        }
      },
      onFrame: (frame) => this.onFrame(frame),
      onState: (state) => this.showConnection(state),
      onRefused: () => void signIn(refusedMessage()).then(() => location.reload()),
    });
    byId<HTMLButtonElement>("signout").onclick = signOut;
    byId<HTMLButtonElement>("sound").onclick = () => {
      unlockSound();
      byId("sound").setAttribute("aria-pressed", "true");
    };
    byId<HTMLButtonElement>("timeline-close").onclick = () => byId<HTMLDialogElement>("timeline-dialog").close();
    byId("queue").addEventListener("keydown", (event) => this.onKey(event));
    onLangChange(() => {
      translateStatic();
      this.draw();
    });
    this.channel.start();
    window.setInterval(() => {
      tickTimers(document);
      this.drawUnitAges();
    }, 1000);
    window.setInterval(() => void this.figures(), FIGURES_EVERY_MS);
  }

  private async loadSnapshot(attempt = 0): Promise<void> {
    try {
      const board = await this.api.get<{ incidents: ApiIncident[]; units: ApiUnit[]; complete?: boolean }>("/v1/board");
      this.state.applySnapshot(board.incidents, board.units);
      const note = byId("snapshot-note");
      // The record was behind the live channel: say so, and fetch again (always safe).
      note.hidden = board.complete !== false;
      note.textContent = t("board.snapshot.behind");
      if (board.complete === false && attempt < 20) window.setTimeout(() => void this.loadSnapshot(attempt + 1), 3000);
    } catch {
      // No read API yet: the board shows what happens from now on, and says so.
      this.state.release();
      byId("snapshot-note").hidden = false;
      byId("snapshot-note").textContent = t("board.snapshot.none");
    }
    this.draw();
    void this.figures();
  }

  private async figures(): Promise<void> {
    const recorded = await todaysIncidents(this.api);
    drawFigures(this.zone, recorded, [...this.state.incidents.values(), ...this.state.closed.values()]);
  }

  private onFrame(frame: ServerFrame): void {
    if (this.commands.onFrame(frame)) return;
    if (frame.type === "incident") {
      this.placing.onChange(frame.change);
      this.state.applyChange(frame.change);
      this.scheduleDraw();
    } else if (frame.type === "unit_status") {
      this.state.applyUnit(frame.status);
      this.scheduleDraw();
    }
  }

  /** Draw at most once per frame however many changes a busy minute brings. */
  private scheduleDraw(): void {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => {
      this.drawPending = false;
      this.draw();
    });
  }

  private draw(): void {
    const queue = this.state.queue();
    const escalations = queue.filter(needsDecision);
    const fresh = escalations.filter((i) => !this.escalated.has(i.incident_id));
    if (fresh.length > 0) alertTone(4);
    this.escalated = new Set(escalations.map((i) => i.incident_id));
    byId("decide-count").textContent = String(escalations.length);
    byId("decide-box").classList.toggle("alarm", escalations.length > 0);
    byId("open-count").textContent = String(queue.length);

    const list = byId("queue");
    const focused = (document.activeElement as HTMLElement | null)?.dataset?.["incident"];
    clear(list);
    if (queue.length === 0) list.append(h("li", { class: "empty" }, t("board.empty")));
    for (const incident of queue) {
      const row = queueRow(incident, this.zone, incident.incident_id === this.selected);
      row.onclick = () => this.select(incident.incident_id, true);
      const actions = h("div", { class: "row-actions" });
      const offered: (BoardAction | "place")[] = ["assign", "reassign", "cancel", "close"];
      if (answerable(incident).length > 0) offered.push("answer");
      if (needsPlace(incident)) offered.unshift("place");
      for (const action of offered) {
        const button = h("button", { type: "button", class: `btn btn-${action}`, "data-action": action }, t(`action.${action}`));
        button.onclick = (event) => {
          event.stopPropagation();
          this.act(incident, action);
        };
        actions.append(button);
      }
      row.append(actions);
      list.append(row);
    }
    if (focused) (list.querySelector(`[data-incident="${CSS.escape(focused)}"]`) as HTMLElement | null)?.focus();
    this.drawMap();
    this.drawUnits();
  }

  private drawMap(): void {
    this.incidentLayer.clearLayers();
    for (const incident of this.state.queue()) {
      if (!incident.position) continue;
      const marker = L.circleMarker(latLng(incident.position), {
        radius: incident.priority === "P1" ? 13 : 10,
        color: PRIORITY_COLOURS[incident.priority] ?? "#333",
        weight: needsDecision(incident) ? 5 : 3,
        fillOpacity: 0.35,
        className: `incident-marker prio-${incident.priority}${needsDecision(incident) ? " decide" : ""}`,
      }).addTo(this.incidentLayer);
      const drawn = marker.getElement();
      drawn?.setAttribute("data-incident", incident.incident_id);
      drawn?.setAttribute("data-lat", String(incident.position.lat));
      drawn?.setAttribute("data-lon", String(incident.position.lon));
      marker.bindTooltip(`${incident.priority} ${t(`kind.${incident.category}`)} · ${t(`state.${incident.state}`)}`);
      marker.on("click", () => this.select(incident.incident_id, true));
    }
    this.unitLayer.clearLayers();
    for (const unit of this.state.units.values()) {
      if (!unit.position) continue;
      const marker = L.circleMarker(latLng(unit.position), {
        radius: 7,
        color: "#212121",
        weight: 1.5,
        fillColor: UNIT_COLOURS[unit.status] ?? "#616161",
        fillOpacity: 0.95,
        className: `unit-marker status-${unit.status}`,
      }).addTo(this.unitLayer);
      // Named on the drawn element too, so a person's tools (and the browser tests) can find it.
      const path = marker.getElement();
      path?.setAttribute("data-unit", unit.unit_id);
      path?.setAttribute("data-lat", String(unit.position.lat));
      path?.setAttribute("data-lon", String(unit.position.lon));
      const age = secondsSince(unit.position_at);
      marker.bindTooltip(`${unitName(this.zone, unit.unit_id)} · ${t(`unit.status.${unit.status}`)}${age !== null ? ` · ${t("board.fix_age")} ${duration(age)}` : ""}`);
    }
  }

  private drawUnits(): void {
    const list = byId("units");
    clear(list);
    const units = [...this.state.units.values()].sort((a, b) => a.unit_id.localeCompare(b.unit_id));
    for (const unit of units) {
      const attrs: Record<string, string> = { class: `unit status-${unit.status}`, "data-unit": unit.unit_id, "data-status": unit.status };
      if (unit.position) {
        attrs["data-lat"] = String(unit.position.lat);
        attrs["data-lon"] = String(unit.position.lon);
      }
      list.append(h("li", attrs,
        h("span", { class: `dot status-${unit.status}` }),
        ` ${unitName(this.zone, unit.unit_id)} `,
        h("span", { class: "muted" }, t(`unit.status.${unit.status}`)), " ",
        h("span", { class: "fix-age", "data-fix": unit.position_at ?? "" }, unit.position ? "" : t("board.no_fix"))));
    }
    this.drawUnitAges();
  }

  private drawUnitAges(): void {
    for (const el of document.querySelectorAll<HTMLElement>(".fix-age[data-fix]")) {
      const age = secondsSince(el.dataset["fix"]);
      if (age !== null) el.textContent = `${t("board.fix_age")} ${duration(age)}`;
    }
  }

  private select(incidentId: string, timeline: boolean): void {
    this.selected = incidentId;
    const incident = this.state.incidents.get(incidentId);
    if (incident?.position) this.map.panTo(latLng(incident.position));
    for (const row of document.querySelectorAll<HTMLElement>("#queue .incident")) {
      row.classList.toggle("selected", row.dataset["incident"] === incidentId);
    }
    if (timeline && incident) void showTimeline(this.api, incident, this.state.seen.get(incidentId) ?? []);
  }

  private onKey(event: KeyboardEvent): void {
    const row = (event.target as HTMLElement).closest<HTMLElement>(".incident");
    if (!row || (event.target as HTMLElement).tagName === "BUTTON") return;
    const id = row.dataset["incident"] ?? "";
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const next = (event.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling) as HTMLElement | null;
      next?.focus();
      if (next?.dataset["incident"]) this.select(next.dataset["incident"], false);
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.select(id, true);
    } else if (KEYS[event.key]) {
      const incident = this.state.incidents.get(id);
      if (incident) {
        event.preventDefault();
        this.act(incident, KEYS[event.key]!);
      }
    }
  }

  /** Open what a row's button or key asks for. */
  private act(incident: Incident, action: BoardAction | "place"): void {
    if (action === "place") this.placing.start(incident);
    else if (action === "answer") this.commands.openAnswer(incident);
    else this.commands.open(incident, action as CommandAction);
  }

  private showConnection(state: ConnectionState): void {
    const el = byId("conn");
    el.className = `conn conn-${state}`;
    el.textContent = t(`conn.${state}`);
  }
}

async function main(): Promise<void> {
  translateStatic();
  languageButton(byId<HTMLButtonElement>("lang"));
  const config = await loadConfig();
  let token = await signIn();
  for (;;) {
    try {
      const zone = await loadZone(token);
      byId("zone-name").textContent = shortName(zone.name);
      new Board(token, config, zone).start();
      return;
    } catch (exc) {
      if (!(exc instanceof Unauthorised)) throw exc;
      token = await signIn(refusedMessage());
    }
  }
}

void main();
