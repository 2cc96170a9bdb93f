// The enterprise security desk: raise an alarm in a few taps at one of the enterprise's own
// places, see its receipt, and follow the enterprise's own alarms live. The desk channel
// carries only this enterprise's incidents (consumers.auth.policy.can_read_incident), and
// the read API answers a desk only about its own: the page never holds another's.

import { Api, ApiError } from "../common/api";
import { Unauthorised, loadConfig, loadZone } from "../common/config";
import { byId, clear, h } from "../common/dom";
import { clock, duration, secondsSince } from "../common/format";
import { languageButton, onLangChange, t, translateStatic } from "../common/i18n";
import { shortName, zoneMap } from "../common/map";
import { refusedMessage, signIn, signOut } from "../common/signin";
import { Channel, type ConnectionState } from "../common/socket";
import type { IncidentChange, PageConfig, Party, ServerFrame, Zone, ZonePlace } from "../common/types";

// What each kind of alarm says, in words the classification rules know
// (dispatch/classify/data/rules.toml), so the tap classifies as the desk meant.
const KINDS: Record<string, string> = {
  fire: "着火了 / fire",
  medical: "有人晕倒需要急救 / medical emergency",
  theft: "有人偷东西 / theft",
  robbery: "有人抢劫 / robbery",
  fight: "有人打架 / fight",
  intrusion: "有人翻墙闯入 / intrusion",
  suspicious_person: "发现可疑人员 / suspicious person",
  other: "",
};
const HURT = "有人受伤 / people hurt";
const SPOTS = ["whole", "gate", "warehouse", "workshop", "office", "parking", "dormitory"];
const SPOT_ZH: Record<string, string> = {
  gate: "大门", warehouse: "仓库", workshop: "车间", office: "办公楼", parking: "停车场", dormitory: "宿舍",
};
const RECEIPTS_KEY = "dispatch.desk.receipts";

interface Receipt {
  alarm_id: string;
  received_at: string;
  text: string;
  spot: string;
}

interface Progress {
  incident_id: string;
  state: IncidentChange["state"];
  priority: IncidentChange["priority"];
  parties: (Party & { eta_at?: string | null })[];
}

/** One alarm of GET /v1/alarms: the enterprise's own, with its incident's progress. */
interface ApiAlarm {
  alarm_id: string;
  received_at: string;
  text?: string | null;
  place_name?: string | null;
  incident_id?: string | null;
  incident?: Progress | null;
}

class DeskPage {
  private channel!: Channel;
  private api: Api;
  private site: ZonePlace | null = null;
  private enterpriseId = "";
  private incidents = new Map<string, IncidentChange>();
  private receipts: Receipt[] = JSON.parse(sessionStorage.getItem(RECEIPTS_KEY) ?? "[]") as Receipt[];
  private earlier: ApiAlarm[] = [];
  private kind = "fire";
  private spot = "whole";
  private hurt = false;
  private sending = false;
  private refetch: number | undefined;

  constructor(
    private readonly token: string,
    private readonly config: PageConfig,
    private readonly zone: Zone,
  ) {
    this.api = new Api(config.intake_url, token);
  }

  start(): void {
    this.channel = new Channel(this.token, {
      onWelcome: (welcome) => {
        if (this.enterpriseId === "") {
          this.enterpriseId = welcome.enterprise_id ?? "";
          this.site = this.zone.places.find((p) => p.id === this.enterpriseId) ?? null;
          byId("site").textContent = this.site ? shortName(this.site.name) : this.enterpriseId;
          this.drawMap();
          this.renderForm();
          void this.loadEarlier();
        }
      },
      onFrame: (frame) => this.onFrame(frame),
      onState: (state) => this.showConnection(state),
      onRefused: () => void signIn(refusedMessage()).then(() => location.reload()),
    });
    byId<HTMLButtonElement>("signout").onclick = signOut;
    byId<HTMLFormElement>("raise").onsubmit = (event) => void this.raise(event);
    byId<HTMLInputElement>("hurt").onchange = (event) => {
      this.hurt = (event.target as HTMLInputElement).checked;
    };
    onLangChange(() => {
      translateStatic();
      this.renderForm();
      this.renderList();
    });
    this.channel.start();
    window.setInterval(() => this.renderList(), 1000);
  }

  private onFrame(frame: ServerFrame): void {
    if (frame.type !== "incident") return;
    const change = frame.change;
    const known = this.incidents.get(change.incident_id);
    if (known && Date.parse(known.at) > Date.parse(change.at)) return;
    this.incidents.set(change.incident_id, change);
    this.renderList();
    // Who is coming and when: the record has each party's ETA; read it again shortly.
    window.clearTimeout(this.refetch);
    this.refetch = window.setTimeout(() => void this.loadEarlier(), 2000);
  }

  /** The starting picture: the enterprise's alarms from the read API, when it is there. */
  private async loadEarlier(): Promise<void> {
    try {
      const page = await this.api.get<{ alarms?: ApiAlarm[] }>("/v1/alarms?limit=50");
      this.earlier = page.alarms ?? [];
    } catch {
      // No read API: the page follows what its channel shows.
    }
    this.renderList();
  }

  private drawMap(): void {
    const site = this.site;
    const map = zoneMap(byId("map"), this.zone, this.config, { highlight: site?.id, keepView: true });
    if (site) map.setView([site.position.lat, site.position.lon], 14);
  }

  private renderForm(): void {
    const kinds = byId("kinds");
    clear(kinds);
    for (const kind of Object.keys(KINDS)) {
      const button = h("button", { type: "button", class: "choice", "data-kind": kind, "aria-pressed": String(kind === this.kind) }, t(`kind.${kind}`));
      button.onclick = () => {
        this.kind = kind;
        this.renderForm();
      };
      kinds.append(button);
    }
    const spots = byId("spots");
    clear(spots);
    for (const spot of SPOTS) {
      const button = h("button", { type: "button", class: "choice", "data-spot": spot, "aria-pressed": String(spot === this.spot) }, spot === "whole" ? t("desk.whole") : t(`spot.${spot}`));
      button.onclick = () => {
        this.spot = spot;
        this.renderForm();
      };
      spots.append(button);
    }
  }

  private async raise(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    if (this.sending || this.site === null) return;
    const extra = byId<HTMLTextAreaElement>("text").value.trim();
    const words = [KINDS[this.kind] ?? "", this.hurt ? HURT : "", extra].filter((w) => w !== "");
    const text = words.length > 0 ? words.join(";") : t("kind.other");
    const siteName = shortName(this.site.name);
    const placeName = this.spot === "whole" ? this.site.name : `${this.site.name} ${SPOT_ZH[this.spot] ?? ""}`;
    // One key per alarm, kept across retries of the same tap (docs/intake.md).
    const key = `${this.enterpriseId}:${Date.now()}:${Math.random().toString(36).slice(2, 10)}`;
    const body = {
      text,
      place_id: this.enterpriseId,
      place_name: placeName,
      position: { lat: this.site.position.lat, lon: this.site.position.lon },
      idempotency_key: key,
    };
    this.sending = true;
    const result = byId("receipt");
    result.className = "receipt";
    result.textContent = "…";
    try {
      const receipt = await this.withRetry(() => this.api.post<{ alarm_id: string; received_at: string }>("/v1/alarms", body));
      const kept: Receipt = { alarm_id: receipt.alarm_id, received_at: receipt.received_at, text, spot: this.spot === "whole" ? siteName : `${siteName} ${t(`spot.${this.spot}`)}` };
      this.receipts.unshift(kept);
      sessionStorage.setItem(RECEIPTS_KEY, JSON.stringify(this.receipts.slice(0, 50)));
      result.className = "receipt receipt-ok";
      clear(result);
      result.append(
        h("strong", {}, `${t("desk.receipt")} `),
        h("code", { id: "receipt-id" }, receipt.alarm_id),
        h("span", {}, ` · ${t("desk.received_at")} ${clock(receipt.received_at)}`),
      );
      byId<HTMLTextAreaElement>("text").value = "";
      this.renderList();
    } catch (exc) {
      result.className = "receipt receipt-failed";
      const fields = exc instanceof ApiError && exc.fields.length > 0 ? ` (${exc.fields.map((f) => `${f.field}: ${f.message}`).join("; ")})` : "";
      result.textContent = `${t("desk.failed")}: ${exc instanceof Error ? exc.message : String(exc)}${fields}`;
    } finally {
      this.sending = false;
    }
  }

  /** Retry a timeout, a lost connection, a 503 or a 429 with the same key: one alarm. */
  private async withRetry<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (exc) {
        const again = exc instanceof ApiError && (exc.status === 0 || exc.status === 503 || exc.status === 429);
        if (!again || attempt >= 4) throw exc;
        await new Promise((resolve) => window.setTimeout(resolve, 1000 * 2 ** attempt));
      }
    }
  }

  /** The freshest word on an alarm's incident: the live channel's, else the record's. */
  private incidentOf(alarmId: string): Progress | undefined {
    for (const change of this.incidents.values()) {
      if (change.first_alarm_id === alarmId || change.merged_alarm_ids?.includes(alarmId)) return this.progress(change);
    }
    return this.earlier.find((a) => a.alarm_id === alarmId)?.incident ?? undefined;
  }

  private progress(change: IncidentChange): Progress {
    const recorded = this.earlier.find((a) => a.incident?.incident_id === change.incident_id)?.incident;
    const eta = new Map((recorded?.parties ?? []).map((p) => [p.unit_id, p.eta_at]));
    return {
      incident_id: change.incident_id,
      state: change.state,
      priority: change.priority,
      parties: change.parties.map((p) => ({ ...p, eta_at: eta.get(p.unit_id) ?? null })),
    };
  }

  private renderList(): void {
    const list = byId("mine");
    clear(list);
    const shown = new Set<string>();
    const rows: HTMLElement[] = [];
    for (const receipt of this.receipts) {
      const change = this.incidentOf(receipt.alarm_id);
      if (change) shown.add(change.incident_id);
      rows.push(this.row(receipt.alarm_id, receipt.received_at, `${receipt.spot} · ${receipt.text}`, change));
    }
    for (const change of [...this.incidents.values()].sort((a, b) => Date.parse(b.at) - Date.parse(a.at))) {
      if (shown.has(change.incident_id)) continue;
      shown.add(change.incident_id);
      rows.push(this.row(change.first_alarm_id ?? change.incident_id, change.timing.received_at ?? change.at, `${change.place_name ?? ""} · ${change.text ?? ""}`, this.progress(change)));
    }
    for (const alarm of this.earlier) {
      const incidentId = alarm.incident?.incident_id ?? alarm.incident_id;
      if (incidentId && shown.has(incidentId)) continue;
      if (this.receipts.some((r) => r.alarm_id === alarm.alarm_id)) continue;
      if (incidentId) shown.add(incidentId);
      rows.push(this.row(alarm.alarm_id, alarm.received_at, `${alarm.place_name ?? ""} · ${alarm.text ?? ""}`, alarm.incident ?? undefined));
    }
    if (rows.length === 0) list.append(h("p", { class: "empty" }, t("desk.none")));
    list.append(...rows);
  }

  private row(alarmId: string, receivedAt: string, what: string, change: Progress | undefined): HTMLElement {
    const since = secondsSince(receivedAt);
    const coming = (change?.parties ?? []).filter((p) => p.kind !== "stand_down" && p.state !== "cancelled" && p.state !== "declined" && p.state !== "timed_out" && p.state !== "taken");
    return h("article", { class: `alarm state-${change?.state ?? "received"}`, "data-alarm": alarmId, "data-incident": change?.incident_id, "data-state": change?.state ?? "received" },
      h("header", {},
        change ? h("span", { class: `prio prio-${change.priority}` }, change.priority) : null,
        h("strong", {}, ` ${t(`state.${change?.state ?? "received"}`)} `),
        h("span", { class: "muted" }, `${clock(receivedAt)}${since !== null ? ` · ${duration(since)} ${t("time.ago")}` : ""}`)),
      h("div", { class: "alarm-what" }, what),
      coming.length > 0
        ? h("div", { class: "alarm-coming" }, `${t("desk.coming")}: `,
            ...coming.map((p) => h("span", { class: `party party-${p.state}`, "data-unit": p.unit_id }, `${p.unit_id} (${t(`state.${p.state}`)}${p.arrived_at ? ` ${clock(p.arrived_at)}` : p.eta_at ? ` · ${t("unit.eta")} ${clock(p.eta_at)}` : ""}) `)))
        : null,
      h("code", { class: "alarm-id" }, alarmId),
    );
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
      new DeskPage(token, config, zone).start();
      return;
    } catch (exc) {
      if (!(exc instanceof Unauthorised)) throw exc;
      token = await signIn(refusedMessage());
    }
  }
}

void main();
