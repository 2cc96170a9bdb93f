// One websocket to the gateway, authenticated by its first frame (browsers cannot set an
// Authorization header on a websocket), reconnecting by itself with backoff. What the channel
// does after `welcome` (a unit's hello and resume) is the page's: see docs/protocol.md.

import type { ServerFrame } from "./types";

export type ConnectionState = "connecting" | "online" | "offline";

export interface ChannelHandlers {
  /** After welcome: a unit sends its hello here. */
  onWelcome(frame: Extract<ServerFrame, { type: "welcome" }>, send: (frame: object) => void): void;
  onFrame(frame: ServerFrame): void;
  onState(state: ConnectionState): void;
  /** The token was refused (close 4001) or the role has no channel (4003): sign in again. */
  onRefused(code: number): void;
}

const MAX_BACKOFF_MS = 15000;
// A frame sent with a ref that gets no answer this long means a dead connection that the
// browser has not noticed (a phone in a tunnel): drop it and reconnect.
const ANSWER_WITHIN_MS = 20000;

export class Channel {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private stopped = false;
  private retryTimer: number | undefined;
  private waiting = new Map<string, number>();
  private welcomed = false;

  constructor(
    private readonly token: string,
    private readonly handlers: ChannelHandlers,
    private readonly url: string = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`,
  ) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.retryTimer);
    this.ws?.close(1000);
  }

  get online(): boolean {
    return this.welcomed && this.ws?.readyState === WebSocket.OPEN;
  }

  /** Send a frame now; false when not connected (the caller keeps it to send again). */
  send(frame: { type?: unknown; ref?: string; [key: string]: unknown }): boolean {
    if (!this.online || this.ws === null) return false;
    this.ws.send(JSON.stringify(frame));
    if (frame.ref !== undefined) {
      const ws = this.ws;
      this.waiting.set(frame.ref, window.setTimeout(() => ws.close(4000, "no answer"), ANSWER_WITHIN_MS));
    }
    return true;
  }

  private connect(): void {
    this.handlers.onState("connecting");
    this.welcomed = false;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: this.token }));
    ws.onmessage = (event: MessageEvent) => {
      if (typeof event.data !== "string") return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(event.data) as ServerFrame;
      } catch {
        return;
      }
      if ((frame.type === "ok" || frame.type === "error") && frame.ref) {
        window.clearTimeout(this.waiting.get(frame.ref));
        this.waiting.delete(frame.ref);
      }
      if (frame.type === "welcome") {
        this.welcomed = true;
        this.attempt = 0;
        this.handlers.onState("online");
        this.handlers.onWelcome(frame, (f) => ws.send(JSON.stringify(f)));
        return;
      }
      this.handlers.onFrame(frame);
    };
    ws.onclose = (event: CloseEvent) => {
      for (const timer of this.waiting.values()) window.clearTimeout(timer);
      this.waiting.clear();
      this.welcomed = false;
      if (this.ws !== ws) return;
      this.ws = null;
      if (event.code === 4001 || event.code === 4003) {
        this.stopped = true;
        this.handlers.onRefused(event.code);
        return;
      }
      this.handlers.onState("offline");
      if (this.stopped) return;
      const reasonWait = event.code === 1013 ? 5000 : 0;
      const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      this.retryTimer = window.setTimeout(() => this.connect(), Math.max(reasonWait, backoff));
    };
  }
}
