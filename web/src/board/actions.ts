// The commander's decisions: assign, reassign, cancel, close, each confirmed in a dialog,
// sent as a `command` frame with a fresh command_id (resent unchanged after `unavailable`, so
// it applies once), and its outcome shown: delivered (ok), applied (the incident changed with
// the commander as actor, or an `applied` outcome) or refused (with the route stage's reason).
// And a unit's answer given by radio or phone, recorded for it: a `respond` frame naming the
// unit and its job (docs/protocol.md, "Answers by radio"), its outcome shown the same way.

import { byId, clear, h } from "../common/dom";
import { distanceM, metres } from "../common/format";
import { t } from "../common/i18n";
import type { Channel } from "../common/socket";
import type { Incident, Party, ServerFrame, Zone } from "../common/types";
import { unitName } from "./queue";
import type { BoardState } from "./state";

export type CommandAction = "assign" | "reassign" | "cancel" | "close";
/** What the row's buttons and keys open: a decision, or a unit's answer given by radio. */
export type BoardAction = CommandAction | "answer";
export const ACTIONS: CommandAction[] = ["assign", "reassign", "cancel", "close"];
const ACTIVE = new Set(["dispatched", "delivered", "acked", "accepted", "en_route", "on_scene"]);
/** The answers a unit can give (the unit page's buttons), recorded by the commander. */
const ANSWERS = ["accept", "decline", "en_route", "on_scene", "resolved"] as const;

interface Sent {
  frame: Record<string, unknown>;
  incidentId: string;
  action: BoardAction;
  eventId: string | null;
}

/** The parties whose answer the commander may record: those still on the incident. */
export function answerable(incident: Incident): Party[] {
  return incident.parties.filter((p) => !!p.assignment_id && ACTIVE.has(p.state));
}

/** Show what became of a decision above the queue (the newest first, a few kept). */
export function showOutcome(incidentId: string, text: string, kind: string): void {
  const box = byId("outcomes");
  box.prepend(h("div", { class: `outcome outcome-${kind}`, "data-incident": incidentId, role: "status" }, `${new Date().toLocaleTimeString(undefined, { hour12: false })} ${incidentId.slice(0, 8)} ${text}`));
  while (box.childElementCount > 6) box.lastElementChild?.remove();
}

/** A version-4 UUID; crypto.randomUUID exists only on https or localhost pages. */
export function uuid4(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class Commands {
  private sent = new Map<string, Sent>();
  private refs = 0;

  constructor(
    private readonly channel: () => Channel,
    private readonly state: BoardState,
    private readonly zone: Zone,
    private readonly principalId: () => string,
  ) {
    byId<HTMLFormElement>("action-form").onsubmit = (event) => this.confirm(event);
    byId<HTMLButtonElement>("action-abort").onclick = () => byId<HTMLDialogElement>("action-dialog").close();
  }

  /** Open the dialog for one decision about an incident. */
  open(incident: Incident, action: CommandAction): void {
    const dialog = byId<HTMLDialogElement>("action-dialog");
    dialog.dataset["incident"] = incident.incident_id;
    dialog.dataset["action"] = action;
    byId("action-title").textContent = `${t(`action.${action}`)} · ${incident.priority} ${t(`kind.${incident.category}`)} · ${incident.place_name ?? ""}`;
    const fields = byId("action-fields");
    clear(fields);
    if (action === "reassign") fields.append(this.select("from_unit_id", t("action.from_unit"), this.activeUnits(incident)));
    if (action === "assign" || action === "reassign") fields.append(this.select("unit_id", t("action.unit"), this.candidates(incident)));
    fields.append(h("label", {}, t("action.reason"), h("input", { name: "reason", id: "action-reason", maxlength: "2000", required: action === "cancel" || action === "close" })));
    byId("action-question").textContent = t("action.confirm_q");
    dialog.showModal();
    (fields.querySelector("select, input") as HTMLElement | null)?.focus();
  }

  /** Open the dialog that records a unit's answer given by radio or phone. */
  openAnswer(incident: Incident): void {
    const parties = answerable(incident);
    if (parties.length === 0) return;
    const dialog = byId<HTMLDialogElement>("action-dialog");
    dialog.dataset["incident"] = incident.incident_id;
    dialog.dataset["action"] = "answer";
    byId("action-title").textContent = `${t("action.answer")} · ${incident.priority} ${t(`kind.${incident.category}`)} · ${incident.place_name ?? ""}`;
    const fields = byId("action-fields");
    clear(fields);
    const units = parties.map((p): [string, string] => [p.assignment_id!, `${unitName(this.zone, p.unit_id)} · ${t(`state.${p.state}`)}`]);
    fields.append(this.select("assignment_id", t("action.answer_unit"), units));
    fields.append(this.select("answer", t("action.answer_what"), ANSWERS.map((a): [string, string] => [a, t(`unit.${a}`)])));
    const reason = h("input", { name: "reason", id: "action-reason", maxlength: "2000" });
    fields.append(h("label", {}, t("action.reason"), reason));
    // A decline says why, as the unit's own does.
    const answer = byId<HTMLSelectElement>("action-answer");
    answer.onchange = () => (reason.required = answer.value === "decline");
    byId("action-question").textContent = t("action.answer_q");
    dialog.showModal();
    (fields.querySelector("select") as HTMLElement | null)?.focus();
  }

  private select(name: string, label: string, options: [string, string][]): HTMLElement {
    const select = h("select", { name, id: `action-${name}`, required: true });
    for (const [value, text] of options) select.append(h("option", { value }, text));
    return h("label", {}, label, select);
  }

  private activeUnits(incident: Incident): [string, string][] {
    return incident.parties.filter((p) => p.kind === "assignment" && ACTIVE.has(p.state)).map((p) => [p.unit_id, unitName(this.zone, p.unit_id)]);
  }

  /** Units not already on the incident, nearest first, with their status and distance. */
  private candidates(incident: Incident): [string, string][] {
    const on = new Set(incident.parties.filter((p) => ACTIVE.has(p.state)).map((p) => p.unit_id));
    const rows = this.zone.units.filter((u) => !on.has(u.id)).map((u) => {
      const live = this.state.units.get(u.id);
      const where = live?.position ?? u.home;
      const d = incident.position ? distanceM(incident.position, where) : Number.POSITIVE_INFINITY;
      const status = live ? t(`unit.status.${live.status}`) : "—";
      return { id: u.id, d, text: `${unitName(this.zone, u.id)} · ${status}${Number.isFinite(d) ? ` · ${metres(d)}` : ""}` };
    });
    rows.sort((a, b) => a.d - b.d);
    return rows.map((r) => [r.id, r.text]);
  }

  private confirm(event: SubmitEvent): void {
    event.preventDefault();
    const dialog = byId<HTMLDialogElement>("action-dialog");
    const form = byId<HTMLFormElement>("action-form");
    const data = new FormData(form);
    const action = dialog.dataset["action"] as BoardAction;
    const incidentId = dialog.dataset["incident"] ?? "";
    const value = (key: string): string => String(data.get(key) ?? "").trim();
    let frame: Record<string, unknown>;
    let label = t(`action.${action}`);
    if (action === "answer") {
      const incident = this.state.incidents.get(incidentId);
      const party = incident?.parties.find((p) => p.assignment_id === value("assignment_id"));
      if (!party) return;
      frame = { type: "respond", unit_id: party.unit_id, assignment_id: party.assignment_id, action: value("answer") };
      label = `${t("action.answer")} ${unitName(this.zone, party.unit_id)} ${t(`unit.${value("answer")}`)}`;
    } else {
      frame = { type: "command", command_id: uuid4(), action, incident_id: incidentId };
      for (const key of ["unit_id", "from_unit_id"]) if (value(key) !== "") frame[key] = value(key);
    }
    if (value("reason") !== "") frame["reason"] = value("reason");
    dialog.close();
    const ref = `c-${++this.refs}`;
    this.sent.set(ref, { frame, incidentId, action, eventId: null });
    showOutcome(incidentId, `${label}…`, "pending");
    if (!this.channel().send({ ...frame, ref })) showOutcome(incidentId, `${label}: ${t("action.failed")}`, "failed");
  }

  /** Take a frame that may answer a command; true when it did. */
  onFrame(frame: ServerFrame): boolean {
    if ((frame.type === "ok" || frame.type === "error") && frame.ref?.startsWith("c-")) {
      const sent = this.sent.get(frame.ref);
      if (!sent) return true;
      if (frame.type === "ok") {
        sent.eventId = frame.event_id ?? null;
        showOutcome(sent.incidentId, `${t(`action.${sent.action}`)}: ${t(sent.action === "answer" ? "action.recorded" : "action.sent")}`, "sent");
      } else if (frame.code === "unavailable") {
        const ref = frame.ref;
        window.setTimeout(() => this.channel().send({ ...sent.frame, ref }), 2000);
      } else {
        this.sent.delete(frame.ref);
        showOutcome(sent.incidentId, `${t(`action.${sent.action}`)}: ${t("action.failed")} (${frame.message})`, "failed");
      }
      return true;
    }
    if (frame.type === "command_outcome") {
      const outcome = frame.outcome ?? frame;
      const result = outcome.result ?? outcome.outcome;
      const sent = [...this.sent.values()].find((s) => s.eventId !== null && s.eventId === outcome.command_event_id);
      const action = sent?.action ?? outcome.action;
      const text = result === "refused"
        ? `${t(`action.${action}`)}: ${t("action.refused")}${outcome.reason ? ` — ${outcome.reason}` : ""}`
        : `${t(`action.${action}`)}: ${t("action.applied")}`;
      showOutcome(outcome.incident_id ?? "", text, result === "refused" ? "refused" : "applied");
      return true;
    }
    if (frame.type === "incident" && frame.change.actor === this.principalId()) {
      showOutcome(frame.change.incident_id, `${t("action.applied")}: ${t(`state.${frame.change.state}`)}`, "applied");
    }
    return false;
  }
}
