// The unit's jobs as this tab has shown them, and the highest seq shown and acknowledged.
// Kept in sessionStorage so that a reload resumes from the same seq and shows each job
// exactly once (docs/protocol.md, "Sequence numbers, acknowledgement and resume").

import type { Assignment } from "../common/types";

export type JobState =
  | "new" | "accepted" | "en_route" | "on_scene" | "resolved" | "declined" | "withdrawn";

export interface Job {
  seq: number;
  assignment: Assignment;
  state: JobState;
  shownAt: string;
  updates: Assignment[];
  withdrawnReason: string | null;
}

interface Stored {
  unitId: string;
  lastSeq: number;
  jobs: Job[];
  onDuty: boolean;
}

const KEY = "dispatch.unit";
const KEEP_FINISHED = 20;

export class JobBook {
  lastSeq = 0;
  jobs: Job[] = [];
  onDuty = true;

  constructor(private readonly unitId: string) {
    const raw = sessionStorage.getItem(KEY);
    if (raw === null) return;
    const stored = JSON.parse(raw) as Stored;
    if (stored.unitId !== unitId) return; // another unit signed in on this tab
    this.lastSeq = stored.lastSeq;
    this.jobs = stored.jobs;
    this.onDuty = stored.onDuty;
  }

  save(): void {
    const finished = this.jobs.filter((j) => !isActive(j));
    const drop = new Set(finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED)));
    this.jobs = this.jobs.filter((j) => !drop.has(j));
    const stored: Stored = { unitId: this.unitId, lastSeq: this.lastSeq, jobs: this.jobs, onDuty: this.onDuty };
    sessionStorage.setItem(KEY, JSON.stringify(stored));
  }

  /** Take a job frame; return what it changed for the screen, or null if already shown. */
  take(seq: number, assignment: Assignment): Job | null {
    if (seq <= this.lastSeq) return null;
    this.lastSeq = seq;
    const now = new Date().toISOString();
    if (assignment.kind === "stand_down") {
      const job = this.byAssignment(assignment.withdraws);
      if (job) {
        job.state = "withdrawn";
        job.withdrawnReason = assignment.reason ?? assignment.summary;
      }
      this.save();
      return job ?? null;
    }
    if (assignment.kind === "update") {
      const job = this.byAssignment(assignment.updates);
      if (job) job.updates.push(assignment);
      this.save();
      return job ?? null;
    }
    const job: Job = { seq, assignment, state: "new", shownAt: now, updates: [], withdrawnReason: null };
    this.jobs.push(job);
    this.save();
    return job;
  }

  bySeq(seq: number): Job | undefined {
    return this.jobs.find((j) => j.seq === seq);
  }

  private byAssignment(id: string | null | undefined): Job | undefined {
    return this.jobs.find((j) => j.assignment.assignment_id === id);
  }

  /** The jobs waiting for an answer: the banner stays while there is one. */
  unanswered(): Job[] {
    return this.jobs.filter((j) => j.state === "new");
  }
}

export function isActive(job: Job): boolean {
  return job.state === "new" || job.state === "accepted" || job.state === "en_route" || job.state === "on_scene";
}
