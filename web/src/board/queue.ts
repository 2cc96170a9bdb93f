// One row of the incident queue: what, where, how urgent, the live timers and every party.

import { add, h } from "../common/dom";
import { duration, secondsSince } from "../common/format";
import { shortName } from "../common/map";
import { t } from "../common/i18n";
import type { Incident, Party, Zone } from "../common/types";
import { needsDecision } from "./state";

const ANSWERED = new Set(["acked", "accepted", "en_route", "on_scene", "resolved"]);
const WAITING = new Set(["dispatched", "delivered", "acked"]);

/** The acceptance deadline of the incident's newest offer, or null when none is waiting. */
export function acceptDeadline(incident: Incident, zone: Zone): number | null {
  const offers = incident.parties.filter((p) => p.kind === "assignment" && WAITING.has(p.state) && p.dispatched_at);
  if (offers.length === 0 || incident.parties.some((p) => p.kind === "assignment" && p.accepted_at)) return null;
  const latest = Math.max(...offers.map((p) => Date.parse(p.dispatched_at!)));
  return latest + (zone.accept_timeout_s[incident.priority] ?? 60) * 1000;
}

export function unitName(zone: Zone, unitId: string): string {
  const unit = zone.units.find((u) => u.id === unitId);
  return unit ? shortName(unit.name) : unitId;
}

export function queueRow(incident: Incident, zone: Zone, selected: boolean): HTMLElement {
  const decide = needsDecision(incident);
  const row = h("li", {
    class: `incident prio-${incident.priority} state-${incident.state}${decide ? " decide" : ""}${selected ? " selected" : ""}`,
    tabindex: "0",
    role: "button",
    "data-incident": incident.incident_id,
    "data-state": incident.state,
    "data-priority": incident.priority,
  });
  add(row,
    h("div", { class: "row-head" },
      h("span", { class: `prio prio-${incident.priority}` }, incident.priority),
      h("strong", { class: "category" }, t(`kind.${incident.category}`)),
      h("span", { class: `state state-${incident.state}` }, t(`state.${incident.state}`)),
      incident.alarm_count > 1 ? h("span", { class: "count" }, `×${incident.alarm_count}`) : null),
    h("div", { class: "place" }, incident.place_name ?? (incident.position ? `${incident.position.lat.toFixed(4)}, ${incident.position.lon.toFixed(4)}` : "?")),
    incident.text ? h("div", { class: "text" }, incident.text) : null,
    decide && incident.reason ? h("div", { class: "reason" }, incident.reason) : null,
    timers(incident, zone),
    parties(incident.parties.filter((p) => p.kind !== "mutual_aid_alert"), zone, "board.parties"),
    parties(incident.parties.filter((p) => p.kind === "mutual_aid_alert"), zone, "board.mutual_aid"),
  );
  return row;
}

function timers(incident: Incident, zone: Zone): HTMLElement {
  const box = h("div", { class: "timers" });
  const received = incident.timing.received_at;
  if (received) box.append(h("span", { class: "timer", "data-since": received }, `${t("board.received")} `, h("b", {}, duration(secondsSince(received) ?? 0))));
  const dispatched = incident.timing.dispatched_at;
  if (dispatched) box.append(h("span", { class: "timer", "data-since": dispatched }, `${t("board.dispatched")} `, h("b", {}, duration(secondsSince(dispatched) ?? 0))));
  const accepted = incident.timing.accepted_at;
  if (accepted && dispatched) {
    const took = (Date.parse(accepted) - Date.parse(dispatched)) / 1000;
    box.append(h("span", { class: "timer stopped", "data-timer": "accept", "data-stopped": "true" }, `${t("board.accepted_in")} `, h("b", {}, duration(took))));
  } else {
    const deadline = acceptDeadline(incident, zone);
    if (deadline !== null) {
      box.append(h("span", { class: "timer countdown", "data-timer": "accept", "data-stopped": "false", "data-deadline": String(deadline) }, `${t("board.countdown")} `, h("b", {}, countdown(deadline))));
    }
  }
  return box;
}

export function countdown(deadline: number): string {
  const left = (deadline - Date.now()) / 1000;
  return left >= 0 ? duration(left) : `${t("board.overdue")} ${duration(-left)}`;
}

function parties(list: Party[], zone: Zone, label: string): HTMLElement | null {
  if (list.length === 0) return null;
  const answered = list.filter((p) => ANSWERED.has(p.state)).length;
  const box = h("div", { class: "parties" }, h("span", { class: "label" }, `${t(label)} ${answered}/${list.length}: `));
  for (const party of list) {
    box.append(h("span", { class: `party party-${party.state}`, "data-unit": party.unit_id, "data-party-state": party.state },
      `${unitName(zone, party.unit_id)} · ${t(`state.${party.state}`)}`));
  }
  return box;
}

/** Refresh every running timer in place, once a second, without redrawing the rows. */
export function tickTimers(root: ParentNode): void {
  for (const el of root.querySelectorAll<HTMLElement>("[data-since]")) {
    const b = el.querySelector("b");
    if (b) b.textContent = duration(secondsSince(el.dataset["since"]) ?? 0);
  }
  for (const el of root.querySelectorAll<HTMLElement>("[data-deadline]")) {
    const b = el.querySelector("b");
    const deadline = Number(el.dataset["deadline"]);
    if (b) b.textContent = countdown(deadline);
    el.classList.toggle("overdue", deadline < Date.now());
  }
}
