// An incident's timeline, on click: every event of the record (GET /v1/incidents/{id}),
// oldest first; when the read API does not answer, the changes this board saw live.

import type { Api } from "../common/api";
import { byId, clear, h } from "../common/dom";
import { clock } from "../common/format";
import { t } from "../common/i18n";
import type { Incident, IncidentChange } from "../common/types";

interface TimelineEvent {
  kind: string;
  at: string;
  actor?: string | null;
  unit_id?: string | null;
  state?: string | null;
  detail?: Record<string, unknown> | null;
}

export async function showTimeline(api: Api, incident: Incident, seen: IncidentChange[]): Promise<void> {
  const dialog = byId<HTMLDialogElement>("timeline-dialog");
  byId("timeline-title").textContent = `${t("board.timeline")} · ${incident.priority} ${t(`kind.${incident.category}`)} · ${incident.place_name ?? ""}`;
  const list = byId("timeline-list");
  clear(list);
  dialog.showModal();
  let events: TimelineEvent[];
  try {
    const body = await api.get<{ timeline?: TimelineEvent[] }>(`/v1/incidents/${incident.incident_id}`);
    events = body.timeline ?? [];
  } catch {
    events = seen.map((c) => ({ kind: "state", at: c.at, actor: c.actor, state: c.state, detail: { reason: c.reason } }));
  }
  for (const event of events) {
    const detail = event.detail ?? {};
    const what = event.state ? t(`state.${event.state}`) : String(detail["action"] ?? detail["kind"] ?? event.kind);
    const reason = typeof detail["reason"] === "string" ? ` — ${detail["reason"]}` : "";
    list.append(h("li", { "data-kind": event.kind }, h("time", {}, clock(event.at)), ` ${what}`,
      event.unit_id ? ` · ${event.unit_id}` : "", event.actor && event.actor !== "system" ? ` · ${event.actor}` : "", reason));
  }
  if (events.length === 0) list.append(h("li", {}, "—"));
}
