// Placing an alarm the zone could not: the commander clicks the map where it happened (or
// types the coordinates), confirms in a dialog that names the nearest known place and the
// grid, and the board asks intake to place it (POST /v1/alarms/{alarm_id}/place, docs/intake.md).
// The alarm is then routed as the incident the board shows; the outcome is shown: placed
// (intake has it on Kafka), then each change of the incident that follows (classified,
// dispatched, or escalated again with the reason), or refused with intake's reason.

import { type Api, ApiError } from "../common/api";
import { byId, clear, h } from "../common/dom";
import { distanceM, metres } from "../common/format";
import { t } from "../common/i18n";
import { L, shortName } from "../common/map";
import type { Incident, IncidentChange, Position, Zone } from "../common/types";
import { showOutcome } from "./actions";
import { gridOf } from "./figures";

// A 503 (intake could not record it, or Kafka did not take it) is answered again: the
// placement is idempotent. A few times, then the commander is told.
const RETRIES = 5;
const RETRY_MS = 2000;

/** Whether the commander has to place an incident: escalated, no position, its alarm known. */
export function needsPlace(incident: Incident): boolean {
  return incident.state === "escalated" && incident.position === null && incident.first_alarm_id !== null;
}

export class Placing {
  private incident: Incident | null = null;
  private marker: L.CircleMarker;
  /** Incidents placed and not yet routed: their next changes are the placement's outcome. */
  private pending = new Set<string>();

  constructor(
    private readonly map: L.Map,
    private readonly api: Api,
    private readonly zone: Zone,
  ) {
    this.marker = L.circleMarker([0, 0], { radius: 12, color: "#ffeb3b", weight: 3, dashArray: "4 4", fill: false, className: "place-marker" });
    this.map.on("click", (event: L.LeafletMouseEvent) => this.onMapClick(event.latlng));
    byId<HTMLButtonElement>("place-cancel").onclick = () => this.stop();
    byId<HTMLButtonElement>("place-type").onclick = () => this.confirm(null);
    byId<HTMLButtonElement>("place-abort").onclick = () => byId<HTMLDialogElement>("place-dialog").close();
    byId<HTMLFormElement>("place-form").onsubmit = (event) => void this.submit(event);
    byId("place-lat").oninput = byId("place-lon").oninput = () => this.describe();
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.incident && !byId<HTMLDialogElement>("place-dialog").open) this.stop();
    });
  }

  /** Start placing an incident: the next click on the map says where it happened. */
  start(incident: Incident): void {
    if (!needsPlace(incident)) return;
    this.incident = incident;
    byId("place-what").textContent = `${incident.priority} ${t(`kind.${incident.category}`)} · ${incident.text ?? ""}`;
    byId("place-hint").hidden = false;
    byId("map").classList.add("placing");
    byId<HTMLButtonElement>("place-type").focus();
  }

  private stop(): void {
    this.incident = null;
    byId("place-hint").hidden = true;
    byId("map").classList.remove("placing");
    this.marker.remove();
  }

  private onMapClick(at: L.LatLng): void {
    if (!this.incident) return;
    this.confirm({ lat: at.lat, lon: at.lng });
  }

  /** Ask for confirmation, with the point clicked (or none, to type it). */
  private confirm(at: Position | null): void {
    const incident = this.incident;
    if (!incident) return;
    if (at) this.marker.setLatLng([at.lat, at.lon]).addTo(this.map);
    byId("place-title").textContent = `${t("place.title")} · ${incident.priority} ${t(`kind.${incident.category}`)}`;
    byId("place-text").textContent = incident.text ?? "";
    byId<HTMLInputElement>("place-lat").value = at ? at.lat.toFixed(6) : "";
    byId<HTMLInputElement>("place-lon").value = at ? at.lon.toFixed(6) : "";
    this.describe();
    byId<HTMLDialogElement>("place-dialog").showModal();
    byId<HTMLButtonElement>(at ? "place-confirm" : "place-lat").focus();
  }

  private typed(): Position | null {
    const lat = Number(byId<HTMLInputElement>("place-lat").value);
    const lon = Number(byId<HTMLInputElement>("place-lon").value);
    const given = byId<HTMLInputElement>("place-lat").value !== "" && byId<HTMLInputElement>("place-lon").value !== "";
    return given && Number.isFinite(lat) && Number.isFinite(lon) ? { lat, lon } : null;
  }

  /** Say where the point is: the nearest place the zone knows, and the grid. */
  private describe(): void {
    const where = byId("place-where");
    clear(where);
    const at = this.typed();
    if (!at) return;
    const nearest = [...this.zone.places].sort((a, b) => distanceM(at, a.position) - distanceM(at, b.position))[0];
    const grid = gridOf(this.zone, null, at);
    if (nearest) where.append(`${t("place.near")} ${shortName(nearest.name)} (${metres(distanceM(at, nearest.position))})`);
    where.append(h("br"), grid ? `${t("place.grid")} ${shortName(grid.name)}` : t("place.no_grid"));
    this.marker.setLatLng([at.lat, at.lon]).addTo(this.map);
  }

  private async submit(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const incident = this.incident;
    const at = this.typed();
    if (!incident || !at || !incident.first_alarm_id) return;
    byId<HTMLDialogElement>("place-dialog").close();
    this.stop();
    const id = incident.incident_id;
    showOutcome(id, `${t("place.title")}…`, "pending");
    const path = `/v1/alarms/${encodeURIComponent(incident.first_alarm_id)}/place`;
    // Watched from now: the incident's changes may come on the channel before intake answers.
    this.pending.add(id);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.api.post(path, { position: { lat: at.lat, lon: at.lon } });
        showOutcome(id, `${t("place.title")}: ${t("place.sent")}`, "sent");
        return;
      } catch (exc) {
        const error = exc instanceof ApiError ? exc : new ApiError(0, String(exc));
        if ((error.status === 503 || error.status === 0) && attempt < RETRIES) {
          await new Promise((resolve) => window.setTimeout(resolve, RETRY_MS));
          continue;
        }
        this.pending.delete(id);
        const why = [error.message, ...error.fields.map((f) => `${f.field}: ${f.message}`)].join("; ");
        showOutcome(id, `${t("place.title")}: ${t("action.refused")} (${why})`, "refused");
        return;
      }
    }
  }

  /** Show what a placed incident became; true when the change was one of them. */
  onChange(change: IncidentChange): boolean {
    if (!this.pending.has(change.incident_id)) return false;
    const reason = change.state === "escalated" && change.reason ? ` — ${change.reason}` : "";
    showOutcome(change.incident_id, `${t("place.title")}: ${t(`state.${change.state}`)}${reason}`, change.state === "escalated" ? "refused" : "applied");
    if (change.state !== "classified") this.pending.delete(change.incident_id);
    return true;
  }
}
