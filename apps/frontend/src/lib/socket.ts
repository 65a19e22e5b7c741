// One WebSocket to the serve app's /ws for live guesses: request ids, latest-drawing-wins
// while offline, reconnection with exponential backoff, and a quiet sleep when the server
// closes an idle socket. Framework-free; see useGuessSocket.

import type { DealMessage, PredictMessage } from "../generated/ws-client-message";
import type { ErrorMessage, PredictionMessage, RoundMessage } from "../generated/ws-server-message";
import { WS_CONSTANTS } from "../generated/ws-constants";
import type { Drawing } from "./strokes";
import { type Clock, realClock } from "./throttle";

/** "idle": the server closed the socket after a silence; the next drawing reconnects. */
export type ConnectionState = "connecting" | "connected" | "reconnecting" | "idle" | "closed";

// The messages and close codes are generated from guessme_contracts.messages (docs/api.md).
// IDLE_CLOSE_CODE: the socket was idle: not an error; reconnect when the player draws again.
// TOO_MANY_CLOSE_CODE: too many sockets from this address: reconnect with backoff, and say why.
export const { IDLE_CLOSE_CODE, TOO_MANY_CLOSE_CODE } = WS_CONSTANTS;

// This client numbers its requests, so the answers it reads carry a number id.
export type Prediction = PredictionMessage & { id: number };

/** A round the server dealt: the digit to draw and the signed ticket that lets it be saved once. */
export type DealtRound = Pick<RoundMessage, "target" | "ticket"> & { id: number };

/** A server error, or `too_many_connections` when the server closed the socket for that. */
export interface ServerError {
  id: number | null;
  code: ErrorMessage["code"] | "too_many_connections";
  message: string;
}

export interface GuessSocketOptions {
  url: string;
  /** The WebSocket class; tests pass a mock. Defaults to the global one at connect time. */
  WebSocketImpl?: typeof WebSocket;
  clock?: Clock;
  /** Delay before reconnect attempt `n` (1-based). */
  backoff?: (attempt: number) => number;
}

/** 0.5 s, 1 s, 2 s, ... capped at 8 s, with up to 20% jitter so many clients do not reconnect in step. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(8000, 500 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 + 0.2 * random()));
}

/** The page's own origin, ws:// or wss:// like the page; `override` (configuration) wins. */
export function socketUrl(location: Pick<Location, "protocol" | "host">, override?: string): string {
  if (override) return override;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

function isPrediction(msg: Record<string, unknown>): msg is Record<string, unknown> & Prediction {
  return (
    msg.type === "prediction" &&
    typeof msg.id === "number" &&
    typeof msg.digit === "number" &&
    Array.isArray(msg.probabilities)
  );
}

function isRound(msg: Record<string, unknown>): msg is DealtRound & Record<string, unknown> {
  return msg.type === "round" && typeof msg.id === "number" && typeof msg.target === "number" && typeof msg.ticket === "string";
}

const OPEN = 1; // WebSocket.OPEN, without needing the global class

function predictMessage(id: number, drawing: Drawing): string {
  const message: PredictMessage = { type: "predict", id, ...drawing };
  return JSON.stringify(message);
}

type Listener<T> = (value: T) => void;

export class GuessSocket {
  state: ConnectionState = "closed";
  private ws: WebSocket | null = null;
  private nextId = 1;
  private pending: { id: number; drawing: Drawing } | null = null;
  private pendingDeal: DealMessage | null = null;
  /** The latest request sent and not answered yet: sent again if the socket drops first. */
  private unanswered: { id: number; drawing: Drawing } | null = null;
  private attempt = 0;
  private retryTimer: unknown = null;
  private stopped = true;
  private readonly clock: Clock;
  private readonly backoff: (attempt: number) => number;
  private readonly listeners = {
    state: new Set<Listener<ConnectionState>>(),
    prediction: new Set<Listener<Prediction>>(),
    round: new Set<Listener<DealtRound>>(),
    error: new Set<Listener<ServerError>>(),
  };

  constructor(private readonly options: GuessSocketOptions) {
    this.clock = options.clock ?? realClock;
    this.backoff = options.backoff ?? ((n) => backoffDelay(n));
  }

  onState(fn: Listener<ConnectionState>): () => void {
    this.listeners.state.add(fn);
    return () => this.listeners.state.delete(fn);
  }

  onPrediction(fn: Listener<Prediction>): () => void {
    this.listeners.prediction.add(fn);
    return () => this.listeners.prediction.delete(fn);
  }

  onRound(fn: Listener<DealtRound>): () => void {
    this.listeners.round.add(fn);
    return () => this.listeners.round.delete(fn);
  }

  onError(fn: Listener<ServerError>): () => void {
    this.listeners.error.add(fn);
    return () => this.listeners.error.delete(fn);
  }

  connect(): void {
    this.stopped = false;
    this.open();
  }

  /** Closes for good (no reconnect). */
  close(): void {
    this.stopped = true;
    if (this.retryTimer !== null) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, "bye");
    this.setState("closed");
  }

  /**
   * Asks for a guess; returns the request id. While the socket is down only the latest drawing
   * is kept, and it is sent as soon as the socket is back.
   */
  predict(drawing: Drawing): number {
    const id = this.nextId++;
    if (this.ws && this.ws.readyState === OPEN) {
      this.pending = null;
      this.unanswered = { id, drawing };
      this.ws.send(predictMessage(id, drawing));
    } else {
      this.pending = { id, drawing };
      if (this.state === "idle") this.open(); // the player draws again: wake up
    }
    return id;
  }

  /**
   * Asks the server to deal a round (the answer comes to `onRound` with this id). `target` is only a
   * wish: the server honours it in test setups, and picks the digit itself everywhere else.
   */
  deal(target?: number): number {
    const id = this.nextId++;
    const message: DealMessage = { type: "deal", id, ...(target === undefined ? {} : { target }) };
    if (this.ws && this.ws.readyState === OPEN) {
      this.pendingDeal = null;
      this.ws.send(JSON.stringify(message));
    } else {
      this.pendingDeal = message; // sent when the socket is (back) up
    }
    return id;
  }

  /** Forgets a drawing queued while offline (the canvas was cleared). */
  dropPending(): void {
    this.pending = null;
    this.unanswered = null;
  }

  private open(): void {
    const Impl = this.options.WebSocketImpl ?? globalThis.WebSocket;
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws: WebSocket;
    try {
      ws = new Impl(this.options.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.setState("connected");
      const deal = this.pendingDeal;
      this.pendingDeal = null;
      if (deal) ws.send(JSON.stringify(deal));
      const pending = this.pending;
      this.pending = null;
      if (pending) {
        this.unanswered = pending;
        ws.send(predictMessage(pending.id, pending.drawing));
      }
    };
    ws.onmessage = (event: MessageEvent) => this.handleMessage(event.data);
    ws.onclose = (event: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      // A drawing sent but never answered (a replica crashed) goes again after the reconnect.
      if (!this.pending && this.unanswered) this.pending = this.unanswered;
      this.unanswered = null;
      if (event.code === IDLE_CLOSE_CODE && !this.pending) {
        this.attempt = 0;
        this.setState("idle"); // no error and no retry loop: predict() reconnects
        return;
      }
      if (event.code === TOO_MANY_CLOSE_CODE) {
        const message = event.reason || "too many connections from your address";
        for (const fn of this.listeners.error) fn({ id: null, code: "too_many_connections", message });
      }
      this.scheduleReconnect();
    };
    // An error is always followed by close, which reconnects.
    ws.onerror = () => undefined;
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.attempt += 1;
    this.setState("reconnecting");
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.open();
    }, this.backoff(this.attempt));
  }

  private handleMessage(data: unknown): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(String(data)) as Record<string, unknown>;
    } catch {
      return; // not ours to interpret; the server only sends JSON
    }
    if (typeof msg.id === "number" && this.unanswered && msg.id >= this.unanswered.id) this.unanswered = null;
    if (isPrediction(msg)) {
      for (const fn of this.listeners.prediction) fn(msg);
    } else if (isRound(msg)) {
      const round: DealtRound = { id: msg.id, target: msg.target, ticket: msg.ticket };
      for (const fn of this.listeners.round) fn(round);
    } else if (msg.type === "error") {
      const err: ServerError = {
        id: typeof msg.id === "number" ? msg.id : null,
        // The server's codes are the contract's; one this build does not know still passes through.
        code: String(msg.code ?? "internal_error") as ErrorMessage["code"],
        message: String(msg.message ?? "unknown error"),
      };
      for (const fn of this.listeners.error) fn(err);
    }
  }

  private setState(state: ConnectionState): void {
    if (state === this.state) return;
    this.state = state;
    for (const fn of this.listeners.state) fn(state);
  }
}
