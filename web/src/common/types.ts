// The JSON the pages read: websocket frames (docs/protocol.md), the read API's incidents and
// units (the issue 11 contract, docs/api.md) and the gateway's zone (consumers/push/pages.py).

export type Priority = "P1" | "P2" | "P3" | "P4";
export type IncidentState =
  | "received" | "classified" | "dispatched" | "accepted" | "en_route" | "on_scene"
  | "resolved" | "declined" | "timed_out" | "redispatched" | "escalated" | "cancelled"
  | "merged";
export type PartyState =
  | "dispatched" | "delivered" | "acked" | "accepted" | "en_route" | "on_scene" | "resolved"
  | "declined" | "timed_out" | "cancelled" | "taken";
export type Availability = "available" | "assigned" | "busy" | "off_duty";
export type AssignmentKind = "assignment" | "mutual_aid_alert" | "stand_down" | "update";

export interface Position {
  lat: number;
  lon: number;
  accuracy_m?: number | null;
}

export interface Party {
  unit_id: string;
  assignment_id?: string | null;
  role: string;
  kind: AssignmentKind;
  state: PartyState;
  dispatched_at?: string | null;
  delivered_at?: string | null;
  acked_at?: string | null;
  accepted_at?: string | null;
  arrived_at?: string | null;
}

export interface Timing {
  received_at?: string | null;
  classified_at?: string | null;
  dispatched_at?: string | null;
  delivered_at?: string | null;
  accepted_at?: string | null;
  on_scene_at?: string | null;
  resolved_at?: string | null;
}

/** One incidents.state event, as the commander and desk channels send it. */
export interface IncidentChange {
  event_id: string;
  incident_id: string;
  state: IncidentState;
  previous_state?: IncidentState | null;
  reason?: string | null;
  actor: string;
  at: string;
  priority: Priority;
  category: string;
  position?: Position | null;
  place_name?: string | null;
  enterprise_id?: string | null;
  timing: Timing;
  parties: Party[];
  merged_alarm_ids?: string[];
  alarm_count?: number | null;
  first_alarm_id?: string | null;
  text?: string | null;
  reporter_name?: string | null;
  reporter_phone?: string | null;
}

/** One incident of the read API (GET /v1/board, /v1/incidents). */
export interface ApiIncident {
  incident_id: string;
  state: IncidentState;
  priority: Priority;
  category: string;
  enterprise_id?: string | null;
  grid_id?: string | null;
  place_name?: string | null;
  position?: Position | null;
  first_alarm_id?: string | null;
  alarm_count?: number | null;
  text?: string | null;
  reporter_name?: string | null;
  reporter_phone?: string | null;
  received_at?: string | null;
  dispatched_at?: string | null;
  delivered_at?: string | null;
  accepted_at?: string | null;
  on_scene_at?: string | null;
  resolved_at?: string | null;
  closed_at?: string | null;
  updated_at: string;
  last_event_id?: string | null;
  updated_event_ids?: string[];
  parties?: Party[];
}

/** What a page keeps of an incident, whichever way it learned of it. */
export interface Incident {
  incident_id: string;
  state: IncidentState;
  priority: Priority;
  category: string;
  enterprise_id: string | null;
  /** The record's grid (the read API's); null when known only from the live channel. */
  grid_id: string | null;
  place_name: string | null;
  position: Position | null;
  first_alarm_id: string | null;
  alarm_ids: string[];
  alarm_count: number;
  text: string | null;
  reporter_name: string | null;
  reporter_phone: string | null;
  timing: Timing;
  parties: Party[];
  reason: string | null;
  actor: string | null;
  updated_at: string;
  last_event_id: string;
  /** Every change held at updated_at: a live change at that very time is one of these or new. */
  held_ids: string[];
}

export interface UnitStatusEvent {
  event_id: string;
  unit_id: string;
  status: Availability;
  position?: Position | null;
  reported_at: string;
  position_at?: string | null;
  presence?: boolean;
}

/** One unit of the read API (GET /v1/board, /v1/units). */
export interface ApiUnit {
  unit_id: string;
  status: Availability;
  position?: Position | null;
  position_at?: string | null;
  position_age_s?: number | null;
  presence?: boolean | null;
  reported_at?: string | null;
}

export interface Assignment {
  assignment_id: string;
  incident_id: string;
  unit_id: string;
  kind: AssignmentKind;
  role: string;
  attempt: number;
  priority: Priority;
  category: string;
  position: Position;
  place_name?: string | null;
  eta_s?: number | null;
  dispatched_at: string;
  ack_deadline: string;
  summary: string;
  text?: string | null;
  reporter_name?: string | null;
  reporter_phone?: string | null;
  withdraws?: string | null;
  reason?: string | null;
  updates?: string | null;
}

export interface CommandOutcome {
  command_event_id?: string;
  event_id?: string;
  incident_id: string;
  action: string;
  result?: "applied" | "refused";
  outcome?: "applied" | "refused";
  reason?: string | null;
}

export type ServerFrame =
  | { type: "welcome"; channel: "unit" | "commander" | "desk"; principal_id: string; unit_id?: string; enterprise_id?: string; heartbeat_s: number }
  | { type: "resume"; after_seq: number; last_seq: number }
  | { type: "job"; seq: number; assignment: Assignment }
  | { type: "ok"; of: string; ref?: string | null; event_id?: string | null }
  | { type: "error"; code: string; message: string; ref?: string | null; retry_after_s?: number | null }
  | { type: "incident"; change: IncidentChange }
  | { type: "unit_status"; status: UnitStatusEvent }
  | { type: "command_outcome"; outcome?: CommandOutcome } & Partial<CommandOutcome>;

export type GridArea = "urban" | "suburban";

export interface ZoneGrid {
  id: string;
  name: string;
  district?: string | null;
  /** The arrival norm the grid is held to: urban ≤ 5 min, suburban ≤ 10 min. */
  area?: GridArea;
  polygon: [number, number][];
}

export interface ZonePlace {
  id: string;
  name: string;
  type: string;
  position: Position;
}

export interface ZoneUnit {
  id: string;
  name: string;
  kind: string;
  home: Position;
}

export interface Zone {
  id: string;
  name: string;
  grids: ZoneGrid[];
  places: ZonePlace[];
  units: ZoneUnit[];
  accept_timeout_s: Record<Priority, number>;
}

export interface PageConfig {
  intake_url: string;
  tile_url: string | null;
  tile_attribution: string;
}
