// The board's picture: every open incident and every unit. It starts from the read API's
// snapshot (GET /v1/board) and follows the commander channel; the channel is opened first
// and its frames are buffered until the snapshot is in, then a change is applied only when
// its (at, event_id) is newer than what the picture holds (docs/protocol.md), so nothing is
// missed between the two and nothing goes back in time.

import type {
  ApiIncident, ApiUnit, Incident, IncidentChange, IncidentState, UnitStatusEvent, Position, Availability,
} from "../common/types";

// `merged` is said of the incident another alarm joined: it stays open (docs/lifecycle.md).
const CLOSED: ReadonlySet<IncidentState> = new Set(["resolved", "cancelled"]);
const PRIORITY_RANK = { P1: 1, P2: 2, P3: 3, P4: 4 } as const;

export interface UnitView {
  unit_id: string;
  status: Availability;
  position: Position | null;
  position_at: string | null;
  reported_at: string | null;
  presence: boolean;
}

export function isOpen(incident: Incident): boolean {
  return !CLOSED.has(incident.state);
}

export function needsDecision(incident: Incident): boolean {
  return incident.state === "escalated";
}

export function fromChange(change: IncidentChange): Incident {
  const alarms = [change.first_alarm_id, ...(change.merged_alarm_ids ?? [])].filter((a): a is string => !!a);
  return {
    incident_id: change.incident_id,
    state: change.state,
    priority: change.priority,
    category: change.category,
    enterprise_id: change.enterprise_id ?? null,
    grid_id: null,
    place_name: change.place_name ?? null,
    position: change.position ?? null,
    first_alarm_id: change.first_alarm_id ?? null,
    alarm_ids: alarms,
    alarm_count: change.alarm_count ?? Math.max(1, alarms.length),
    text: change.text ?? null,
    reporter_name: change.reporter_name ?? null,
    reporter_phone: change.reporter_phone ?? null,
    timing: change.timing,
    parties: change.parties,
    reason: change.reason ?? null,
    actor: change.actor,
    updated_at: change.at,
    last_event_id: change.event_id,
    held_ids: [change.event_id],
  };
}

export function fromApi(api: ApiIncident): Incident {
  return {
    incident_id: api.incident_id,
    state: api.state,
    priority: api.priority,
    category: api.category,
    enterprise_id: api.enterprise_id ?? null,
    grid_id: api.grid_id ?? null,
    place_name: api.place_name ?? null,
    position: api.position ?? null,
    first_alarm_id: api.first_alarm_id ?? null,
    alarm_ids: api.first_alarm_id ? [api.first_alarm_id] : [],
    alarm_count: api.alarm_count ?? 1,
    text: api.text ?? null,
    reporter_name: api.reporter_name ?? null,
    reporter_phone: api.reporter_phone ?? null,
    timing: {
      received_at: api.received_at ?? null,
      dispatched_at: api.dispatched_at ?? null,
      delivered_at: api.delivered_at ?? null,
      accepted_at: api.accepted_at ?? null,
      on_scene_at: api.on_scene_at ?? null,
      resolved_at: api.resolved_at ?? null,
    },
    parties: api.parties ?? [],
    reason: null,
    actor: null,
    updated_at: api.updated_at,
    last_event_id: api.last_event_id ?? "",
    held_ids: api.updated_event_ids ?? (api.last_event_id ? [api.last_event_id] : []),
  };
}

/** The merge rule of docs/protocol.md: a change later than what the board shows replaces it;
 * an earlier one, or one at that very time that the board already holds, is dropped. */
export function newer(at: string, id: string, known: Incident): boolean {
  const a = Date.parse(at);
  const b = Date.parse(known.updated_at);
  return a !== b ? a > b : !known.held_ids.includes(id);
}

export class BoardState {
  incidents = new Map<string, Incident>();
  units = new Map<string, UnitView>();
  /** The changes seen live per incident, oldest first: the timeline when the record has none. */
  seen = new Map<string, IncidentChange[]>();
  /** Incidents that closed while the board watched, for today's figures. */
  closed = new Map<string, Incident>();
  private buffer: ({ kind: "incident"; change: IncidentChange } | { kind: "unit"; status: UnitStatusEvent })[] | null = [];

  /** Take a starting picture (again, when the first was incomplete), then what was buffered. */
  applySnapshot(incidents: ApiIncident[], units: ApiUnit[]): void {
    for (const api of incidents) {
      const known = this.incidents.get(api.incident_id) ?? this.closed.get(api.incident_id);
      const taken = fromApi(api);
      if (!known || Date.parse(api.updated_at) > Date.parse(known.updated_at)) {
        this.incidents.set(api.incident_id, taken);
        this.closed.delete(api.incident_id);
      } else if (Date.parse(api.updated_at) === Date.parse(known.updated_at)) {
        known.held_ids = [...new Set([...known.held_ids, ...taken.held_ids])];
      }
    }
    for (const unit of units) {
      const known = this.units.get(unit.unit_id);
      if (known?.reported_at && unit.reported_at && Date.parse(known.reported_at) > Date.parse(unit.reported_at)) continue;
      this.units.set(unit.unit_id, {
        unit_id: unit.unit_id,
        status: unit.status,
        position: unit.position ?? null,
        position_at: unit.position_at ?? unit.reported_at ?? null,
        reported_at: unit.reported_at ?? null,
        presence: unit.presence ?? false,
      });
    }
    this.release();
  }

  /** Go on without a starting picture (the read API is not there): apply what was buffered. */
  release(): void {
    const buffered = this.buffer ?? [];
    this.buffer = null;
    for (const item of buffered) {
      if (item.kind === "incident") this.applyChange(item.change);
      else this.applyUnit(item.status);
    }
  }

  applyChange(change: IncidentChange): boolean {
    if (this.buffer !== null) {
      this.buffer.push({ kind: "incident", change });
      return false;
    }
    const history = this.seen.get(change.incident_id) ?? [];
    if (!history.some((c) => c.event_id === change.event_id)) {
      history.push(change);
      history.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
      this.seen.set(change.incident_id, history);
    }
    const known = this.incidents.get(change.incident_id) ?? this.closed.get(change.incident_id);
    if (known && !newer(change.at, change.event_id, known)) return false;
    const incident = fromChange(change);
    if (known && Date.parse(known.updated_at) === Date.parse(change.at)) {
      incident.held_ids = [...known.held_ids, change.event_id];
    }
    // An alarm joining the incident changes its count and words, not where it stands.
    if (change.state === "merged" && known) incident.state = known.state;
    if (isOpen(incident)) {
      this.incidents.set(incident.incident_id, incident);
      this.closed.delete(incident.incident_id);
    } else {
      this.incidents.delete(incident.incident_id);
      this.closed.set(incident.incident_id, incident);
    }
    return true;
  }

  applyUnit(status: UnitStatusEvent): void {
    if (this.buffer !== null) {
      this.buffer.push({ kind: "unit", status });
      return;
    }
    const known = this.units.get(status.unit_id);
    if (known?.reported_at && Date.parse(known.reported_at) > Date.parse(status.reported_at)) return;
    this.units.set(status.unit_id, {
      unit_id: status.unit_id,
      status: status.status,
      position: status.position ?? known?.position ?? null,
      position_at: status.position ? (status.position_at ?? status.reported_at) : (known?.position_at ?? null),
      reported_at: status.reported_at,
      presence: status.presence ?? false,
    });
  }

  /** Open incidents: those needing a decision first, then by priority, then oldest first. */
  queue(): Incident[] {
    return [...this.incidents.values()].filter(isOpen).sort((a, b) => {
      const decide = Number(needsDecision(b)) - Number(needsDecision(a));
      if (decide !== 0) return decide;
      const rank = PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority];
      if (rank !== 0) return rank;
      return Date.parse(a.timing.received_at ?? a.updated_at) - Date.parse(b.timing.received_at ?? b.updated_at);
    });
  }
}
