// The unit's phone page: jobs arrive with sound, vibration and a banner that stays until
// answered; accept, decline with a reason, en route, on scene, resolved; on/off duty; the
// browser's position reported while on duty; reconnect and resume from the last seq shown.

import { Channel, type ConnectionState } from "../common/socket";
import { Unauthorised, loadConfig, loadZone } from "../common/config";
import { add, byId, clear, h } from "../common/dom";
import { bearing, clock, distanceM, duration, metres } from "../common/format";
import { languageButton, onLangChange, t, translateStatic } from "../common/i18n";
import { L, latLng, zoneMap } from "../common/map";
import { refusedMessage, signIn, signOut } from "../common/signin";
import { alertTone, unlockSound, vibrate } from "../common/sound";
import type { Availability, PageConfig, Position, ServerFrame, Zone } from "../common/types";
import { type Job, JobBook, isActive } from "./jobs";

const REPORT_EVERY_MS = 30000;
// Without a fix a change of availability still has to be told: the unit's base, marked as
// no better than a couple of kilometres.
const BASE_ACCURACY_M = 2000;

type Action = "accept" | "decline" | "en_route" | "on_scene" | "resolved";
const NEXT: Partial<Record<Job["state"], Action[]>> = {
  new: ["accept", "decline"],
  accepted: ["en_route", "on_scene", "resolved"],
  en_route: ["on_scene", "resolved"],
  on_scene: ["resolved"],
};
const AFTER: Record<Action, Job["state"]> = {
  accept: "accepted",
  decline: "declined",
  en_route: "en_route",
  on_scene: "on_scene",
  resolved: "resolved",
};

class UnitPage {
  private book!: JobBook;
  private channel!: Channel;
  private fix: Position | null = null;
  private watch: number | null = null;
  private reportTimer: number | undefined;
  private refs = 0;
  private lastStatus: Availability | null = null;
  private pending = new Map<string, { frame: Record<string, unknown>; onOk: () => void }>();
  private map: L.Map | null = null;
  private jobLayer: L.LayerGroup | null = null;
  private unitId = "";
  private base: Position | null = null;

  constructor(
    private readonly token: string,
    private readonly config: PageConfig,
    private readonly zone: Zone,
  ) {}

  start(): void {
    this.channel = new Channel(this.token, {
      onWelcome: (welcome, send) => {
        this.unitId = welcome.unit_id ?? welcome.principal_id;
        if (!this.book) this.book = new JobBook(this.unitId);
        byId("unit-id").textContent = this.unitName();
        this.base = this.zone.units.find((u) => u.id === this.unitId)?.home ?? null;
        // The highest seq shown and acknowledged: every later job comes, each once.
        send({ type: "hello", last_acked_seq: this.book.lastSeq });
        this.render();
      },
      onFrame: (frame) => this.onFrame(frame),
      onState: (state) => this.showConnection(state),
      onRefused: () => void signIn(refusedMessage()).then(() => location.reload()),
    });
    byId<HTMLButtonElement>("duty").onclick = () => {
      unlockSound();
      this.book.onDuty = !this.book.onDuty;
      this.book.save();
      this.applyDuty();
      this.render();
    };
    byId<HTMLButtonElement>("signout").onclick = signOut;
    byId<HTMLFormElement>("decline-form").onsubmit = (event) => this.onDecline(event);
    byId<HTMLButtonElement>("decline-abort").onclick = () => byId<HTMLDialogElement>("decline-dialog").close();
    document.addEventListener("click", unlockSound, { once: true });
    onLangChange(() => {
      translateStatic();
      this.render();
    });
    this.channel.start();
    window.setInterval(() => this.renderTimers(), 1000);
  }

  private unitName(): string {
    const unit = this.zone.units.find((u) => u.id === this.unitId);
    return unit ? `${unit.name} (${unit.id})` : this.unitId;
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case "resume":
        if (this.book.onDuty) this.applyDuty();
        else this.report(true);
        this.resendPending();
        break;
      case "job": {
        const before = this.book.lastSeq;
        const job = this.book.take(frame.seq, frame.assignment);
        // Stored before it is acknowledged, so a reload cannot lose a job it acknowledged.
        this.channel.send({ type: "ack", seq: frame.seq });
        if (frame.seq > before && frame.assignment.kind !== "stand_down" && frame.assignment.kind !== "update") {
          alertTone();
          vibrate();
        } else if (job && frame.seq > before) {
          vibrate();
        }
        this.render();
        this.report(false);
        break;
      }
      case "ok":
        if (frame.ref) {
          const pending = this.pending.get(frame.ref);
          this.pending.delete(frame.ref);
          pending?.onOk();
          this.render();
        }
        break;
      case "error":
        this.onError(frame);
        break;
      default:
        break;
    }
  }

  private onError(frame: Extract<ServerFrame, { type: "error" }>): void {
    const pending = frame.ref ? this.pending.get(frame.ref) : undefined;
    if (frame.code === "unavailable" || frame.code === "rate_limited") {
      // Idempotent: the same frame is sent again shortly.
      if (pending && frame.ref) {
        const ref = frame.ref;
        window.setTimeout(() => this.channel.send({ ...pending.frame, ref }), (frame.retry_after_s ?? 2) * 1000);
      }
      return;
    }
    if (frame.ref) this.pending.delete(frame.ref);
    if (frame.code === "job_withdrawn" && pending) {
      const seq = pending.frame["seq"];
      const job = typeof seq === "number" ? this.book.bySeq(seq) : undefined;
      if (job) job.state = "withdrawn";
      this.book.save();
    }
    this.toast(`${frame.code}: ${frame.message}`);
    this.render();
  }

  private resendPending(): void {
    for (const [ref, { frame }] of this.pending) this.channel.send({ ...frame, ref });
  }

  private respond(job: Job, action: Action, reason?: string): void {
    const ref = `r-${job.seq}-${action}-${++this.refs}`;
    const frame: Record<string, unknown> = { type: "respond", seq: job.seq, action };
    if (reason) frame["reason"] = reason;
    const onOk = (): void => {
      job.state = AFTER[action];
      this.book.save();
      this.report(false);
    };
    this.pending.set(ref, { frame, onOk });
    this.channel.send({ ...frame, ref });
    this.render();
  }

  private onDecline(event: SubmitEvent): void {
    event.preventDefault();
    const dialog = byId<HTMLDialogElement>("decline-dialog");
    const seq = Number(dialog.dataset["seq"]);
    const reason = byId<HTMLInputElement>("decline-reason").value.trim();
    const job = this.book.bySeq(seq);
    if (!job || reason === "") return;
    dialog.close();
    this.respond(job, "decline", reason);
  }

  // -- duty and position --------------------------------------------------------------------

  private status(): Availability {
    if (!this.book.onDuty) return "off_duty";
    const active = this.book.jobs.filter((j) => j.state !== "new" && isActive(j));
    if (active.some((j) => j.state === "on_scene")) return "busy";
    return active.length > 0 ? "assigned" : "available";
  }

  private applyDuty(): void {
    if (this.book.onDuty && this.watch === null && "geolocation" in navigator) {
      this.watch = navigator.geolocation.watchPosition(
        (p) => {
          const first = this.fix === null;
          this.fix = { lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: Math.min(100000, p.coords.accuracy) };
          if (first) this.report(true);
          this.render();
        },
        () => {
          this.fix = null;
          this.render();
        },
        { enableHighAccuracy: true, maximumAge: 10000 },
      );
      window.clearInterval(this.reportTimer);
      this.reportTimer = window.setInterval(() => this.report(true), REPORT_EVERY_MS);
    }
    if (!this.book.onDuty) {
      if (this.watch !== null) navigator.geolocation.clearWatch(this.watch);
      this.watch = null;
      window.clearInterval(this.reportTimer);
    }
    this.report(true);
  }

  /** Report the position: always when asked (every 30 s), else only on a change of status. */
  private report(always: boolean): void {
    const status = this.status();
    if (!always && status === this.lastStatus) return;
    const where = this.fix ?? (this.base ? { ...this.base, accuracy_m: BASE_ACCURACY_M } : null);
    if (where === null || (this.fix === null && status === this.lastStatus)) return;
    const ref = `p-${++this.refs}`;
    const frame = { type: "position", lat: where.lat, lon: where.lon, accuracy_m: where.accuracy_m ?? null, status };
    if (this.channel.send({ ...frame, ref })) this.lastStatus = status;
  }

  // -- drawing ------------------------------------------------------------------------------

  private showConnection(state: ConnectionState): void {
    const el = byId("conn");
    el.className = `conn conn-${state}`;
    el.textContent = t(`conn.${state}`);
  }

  private toast(text: string): void {
    const el = byId("toast");
    el.textContent = text;
    el.hidden = false;
    window.setTimeout(() => (el.hidden = true), 6000);
  }

  private render(): void {
    if (!this.book) return;
    const duty = byId<HTMLButtonElement>("duty");
    duty.textContent = this.book.onDuty ? t("unit.off_duty") : t("unit.on_duty");
    duty.setAttribute("aria-pressed", String(this.book.onDuty));
    const status = byId("status");
    status.textContent = t(`unit.status.${this.status()}`);
    status.className = `chip status-${this.status()}`;
    byId("fix").textContent = this.fix
      ? `${t("unit.position")}: ±${Math.round(this.fix.accuracy_m ?? 0)} m`
      : t("unit.no_position");
    this.renderBanner();
    this.renderJobs();
    this.renderTimers();
  }

  private renderBanner(): void {
    const banner = byId("banner");
    const waiting = this.book.unanswered();
    const job = waiting[0];
    banner.hidden = job === undefined;
    clear(banner);
    if (!job) return;
    const a = job.assignment;
    banner.className = `banner prio-${a.priority}`;
    banner.dataset["seq"] = String(job.seq);
    banner.append(
      h("div", { class: "banner-title" }, a.kind === "mutual_aid_alert" ? t("unit.mutual_aid") : t("unit.new_job"),
        waiting.length > 1 ? ` (+${waiting.length - 1})` : ""),
      h("div", { class: "banner-summary" }, `${a.priority} ${t(`kind.${a.category}`)} · ${a.place_name ?? ""}`),
      this.buttons(job),
    );
  }

  private buttons(job: Job): HTMLElement {
    const row = h("div", { class: "actions" });
    const waiting = [...this.pending.values()].some((p) => p.frame["seq"] === job.seq);
    for (const action of NEXT[job.state] ?? []) {
      const label = action === "accept" ? "unit.accept" : action === "decline" ? "unit.decline" : `unit.${action}`;
      const button = h("button", { type: "button", class: `btn btn-${action}`, "data-action": action, disabled: waiting }, t(label));
      button.onclick = () => {
        unlockSound();
        if (action === "decline") {
          const dialog = byId<HTMLDialogElement>("decline-dialog");
          dialog.dataset["seq"] = String(job.seq);
          byId<HTMLInputElement>("decline-reason").value = "";
          dialog.showModal();
        } else {
          this.respond(job, action);
        }
      };
      row.append(button);
    }
    return row;
  }

  private renderJobs(): void {
    const list = byId("jobs");
    clear(list);
    const jobs = [...this.book.jobs].reverse();
    if (jobs.length === 0) list.append(h("p", { class: "empty" }, t("unit.no_jobs")));
    for (const job of jobs) list.append(this.card(job));
    this.renderMap(jobs.find(isActive));
  }

  private card(job: Job): HTMLElement {
    const a = job.assignment;
    const active = isActive(job);
    const card = h("article", {
      class: `job ${active ? "job-active" : "job-done"} prio-${a.priority}`,
      "data-seq": String(job.seq),
      "data-incident": a.incident_id,
      "data-state": job.state,
    });
    add(card,
      h("header", {},
        h("span", { class: `prio prio-${a.priority}` }, a.priority),
        h("strong", {}, ` ${t(`kind.${a.category}`)} `),
        h("span", { class: "job-state" }, job.state === "new" ? t("unit.new_job") : job.state === "withdrawn" ? t("unit.withdrawn") : t(`state.${job.state}`))),
      h("div", { class: "job-place" }, a.place_name ?? `${a.position.lat.toFixed(5)}, ${a.position.lon.toFixed(5)}`),
      a.text ? h("p", { class: "job-text" }, a.text) : null,
      a.reporter_name || a.reporter_phone
        ? h("div", { class: "job-caller" }, `${t("unit.caller")}: ${a.reporter_name ?? ""} `,
            a.reporter_phone ? h("a", { href: `tel:${a.reporter_phone.replace(/\s/g, "")}` }, a.reporter_phone) : null)
        : null,
      this.whereFrom(a.position, a.eta_s),
      h("div", { class: "job-times" }, `${clock(a.dispatched_at)} · ${t("board.countdown")} `, h("span", { class: "deadline", "data-deadline": a.ack_deadline })),
    );
    for (const update of job.updates) {
      card.append(h("div", { class: "job-update" }, `${t("unit.update")}: ${update.reason ?? update.summary}`, update.text ? ` — ${update.text}` : ""));
    }
    if (job.state === "withdrawn") card.append(h("div", { class: "job-withdrawn" }, `${t("unit.withdrawn")}: ${job.withdrawnReason ?? ""}`));
    if (active && job.state !== "new") card.append(this.buttons(job));
    return card;
  }

  private whereFrom(target: Position, eta: number | null | undefined): HTMLElement {
    const parts: string[] = [];
    if (this.fix) {
      const [, point] = bearing(this.fix, target);
      parts.push(`${t("unit.distance")} ${metres(distanceM(this.fix, target))}`, `${t("unit.bearing")} ${point}`);
    }
    if (eta !== null && eta !== undefined) parts.push(`${t("unit.eta")} ${duration(eta)}`);
    return h("div", { class: "job-where" }, parts.join(" · "));
  }

  private renderTimers(): void {
    for (const el of document.querySelectorAll<HTMLElement>("[data-deadline]")) {
      const left = (Date.parse(el.dataset["deadline"] ?? "") - Date.now()) / 1000;
      el.textContent = left > 0 ? duration(left) : t("board.overdue");
    }
  }

  private renderMap(job: Job | undefined): void {
    const box = byId("job-map");
    box.hidden = job === undefined;
    if (!job) return;
    if (this.map === null) {
      this.map = zoneMap(box, this.zone, this.config, { zoomControl: false, keepView: true });
      this.jobLayer = L.layerGroup().addTo(this.map);
    }
    const layer = this.jobLayer!;
    layer.clearLayers();
    const target = latLng(job.assignment.position);
    L.circleMarker(target, { radius: 9, color: "#c62828", fillOpacity: 0.8, className: "job-target" })
      .bindTooltip(job.assignment.place_name ?? t(`kind.${job.assignment.category}`), { permanent: true, className: "grid-label", direction: "top" })
      .addTo(layer);
    const points: L.LatLngExpression[] = [target];
    if (this.fix) {
      L.circleMarker(latLng(this.fix), { radius: 7, color: "#1565c0", fillOpacity: 0.8 }).addTo(layer);
      points.push(latLng(this.fix));
    }
    this.map.invalidateSize();
    this.map.fitBounds(L.latLngBounds(points), { maxZoom: 16, padding: [24, 24] });
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
      new UnitPage(token, config, zone).start();
      return;
    } catch (exc) {
      if (!(exc instanceof Unauthorised)) throw exc;
      token = await signIn(refusedMessage());
    }
  }
}

void main();
