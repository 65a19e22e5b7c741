import { Server, WebSocket as MockWebSocket } from "mock-socket";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type ConnectionState,
  GuessSocket,
  IDLE_CLOSE_CODE,
  type Prediction,
  TOO_MANY_CLOSE_CODE,
  backoffDelay,
  socketUrl,
} from "../src/lib/socket";

const URL = "ws://game.test/ws";
const drawing = { strokes: [[[1, 2], [3, 4]]] as [number[], number[]][], width: 400, height: 400 };

let server: Server | null = null;
afterEach(() => {
  server?.stop();
  server = null;
});

/** A fake serve app: answers every predict with the digit `7`. */
function startServer(received: unknown[] = []): Server {
  const s = new Server(URL);
  s.on("connection", (sock) => {
    sock.on("message", (data) => {
      const msg = JSON.parse(String(data)) as { id: number };
      received.push(msg);
      const probabilities = Array.from({ length: 10 }, (_, d) => (d === 7 ? 0.91 : 0.01));
      sock.send(JSON.stringify({ type: "prediction", id: msg.id, digit: 7, probabilities, model_version: "3" }));
    });
  });
  return s;
}

function makeSocket(backoff = () => 20): { socket: GuessSocket; states: ConnectionState[] } {
  const socket = new GuessSocket({ url: URL, WebSocketImpl: MockWebSocket as unknown as typeof WebSocket, backoff });
  const states: ConnectionState[] = [];
  socket.onState((s) => states.push(s));
  return { socket, states };
}

describe("socketUrl", () => {
  it("follows the page's origin and scheme", () => {
    expect(socketUrl({ protocol: "http:", host: "localhost:8000" })).toBe("ws://localhost:8000/ws");
    expect(socketUrl({ protocol: "https:", host: "guessme.example" })).toBe("wss://guessme.example/ws");
  });

  it("lets configuration override it", () => {
    expect(socketUrl({ protocol: "https:", host: "a" }, "wss://b/ws")).toBe("wss://b/ws");
  });
});

describe("backoffDelay", () => {
  it("doubles from 0.5 s up to 8 s, plus at most 20% jitter", () => {
    expect([1, 2, 3, 4, 5, 6, 9].map((n) => backoffDelay(n, () => 0))).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000]);
    expect(backoffDelay(1, () => 1)).toBe(600);
  });
});

describe("GuessSocket", () => {
  it("connects, sends predict requests with ids, and delivers predictions", async () => {
    const received: unknown[] = [];
    server = startServer(received);
    const { socket, states } = makeSocket();
    const got: Prediction[] = [];
    socket.onPrediction((p) => got.push(p));
    socket.connect();
    await vi.waitFor(() => expect(socket.state).toBe("connected"));
    const id = socket.predict(drawing);
    await vi.waitFor(() => expect(got).toHaveLength(1));
    expect(received).toEqual([{ type: "predict", id, ...drawing }]);
    expect(got[0]).toMatchObject({ id, digit: 7, model_version: "3" });
    expect(states).toEqual(["connecting", "connected"]);
    socket.close();
    expect(socket.state).toBe("closed");
  });

  it("keeps only the latest drawing while offline and sends it once connected", async () => {
    const received: { id: number }[] = [];
    const { socket } = makeSocket();
    socket.predict(drawing);
    const latest = socket.predict({ ...drawing, width: 300 });
    server = startServer(received);
    socket.connect();
    await vi.waitFor(() => expect(received).toHaveLength(1));
    expect(received[0]).toMatchObject({ id: latest, width: 300 });
    socket.close();
  });

  it("asks for a round while offline, sends the ask on connect, and delivers the dealt round", async () => {
    const received: { id: number; type: string; target?: number }[] = [];
    const s = new Server(URL);
    server = s;
    s.on("connection", (sock) => {
      sock.on("message", (data) => {
        const msg = JSON.parse(String(data)) as { id: number; type: string; target?: number };
        received.push(msg);
        sock.send(JSON.stringify({ type: "round", id: msg.id, target: 4, ticket: "v1.x" }));
      });
    });
    const { socket } = makeSocket();
    const rounds: unknown[] = [];
    socket.onRound((r) => rounds.push(r));
    const id = socket.deal(6);
    socket.connect();
    await vi.waitFor(() => expect(rounds).toHaveLength(1));
    expect(received).toEqual([{ type: "deal", id, target: 6 }]);
    expect(rounds[0]).toEqual({ id, target: 4, ticket: "v1.x" });  // the server's digit, whatever was asked
    socket.close();
  });

  it("reconnects with backoff after the connection drops", async () => {
    server = startServer();
    const backoff = vi.fn(() => 30);
    const { socket, states } = makeSocket(backoff);
    socket.connect();
    await vi.waitFor(() => expect(socket.state).toBe("connected"));
    server.clients()[0]?.close();
    await vi.waitFor(() => expect(states).toContain("reconnecting"));
    await vi.waitFor(() => expect(socket.state).toBe("connected"));
    expect(backoff).toHaveBeenCalledWith(1);
    // It still works after the reconnect.
    const got: Prediction[] = [];
    socket.onPrediction((p) => got.push(p));
    socket.predict(drawing);
    await vi.waitFor(() => expect(got).toHaveLength(1));
    socket.close();
  });

  it("keeps retrying while the server is down, with growing attempts", async () => {
    const backoff = vi.fn(() => 10);
    const { socket } = makeSocket(backoff);
    socket.connect(); // nobody listening
    await vi.waitFor(() => expect(backoff.mock.calls.length).toBeGreaterThanOrEqual(3));
    expect(backoff.mock.calls.slice(0, 3).map((c) => (c as unknown[])[0])).toEqual([1, 2, 3]);
    expect(socket.state).toBe("reconnecting");
    server = startServer();
    await vi.waitFor(() => expect(socket.state).toBe("connected"));
    socket.close();
    const calls = backoff.mock.calls.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(backoff.mock.calls.length).toBe(calls); // closed for good: no more retries
  });

  it("reports server errors and ignores what it cannot parse", async () => {
    server = new Server(URL);
    server.on("connection", (sock) => {
      sock.on("message", () => {
        sock.send("not json");
        sock.send(JSON.stringify({ type: "error", id: 1, code: "invalid_input", message: "empty drawing" }));
      });
    });
    const { socket } = makeSocket();
    const errors: unknown[] = [];
    socket.onError((e) => errors.push(e));
    socket.connect();
    await vi.waitFor(() => expect(socket.state).toBe("connected"));
    socket.predict(drawing);
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]).toEqual({ id: 1, code: "invalid_input", message: "empty drawing" });
    socket.close();
  });

  it("sleeps quietly when the server closes an idle socket, and wakes up when the player draws", async () => {
    const received: { id: number }[] = [];
    server = startServer(received);
    const backoff = vi.fn(() => 10);
    const { socket, states } = makeSocket(backoff);
    const errors: unknown[] = [];
    socket.onError((e) => errors.push(e));
    socket.connect();
    await vi.waitFor(() => expect(socket.state).toBe("connected"));
    server.clients()[0]?.close({ code: IDLE_CLOSE_CODE, reason: "idle for 60 s", wasClean: true });
    await vi.waitFor(() => expect(socket.state).toBe("idle"));
    await new Promise((r) => setTimeout(r, 50));
    expect(backoff).not.toHaveBeenCalled(); // no retry loop while nobody draws
    expect(errors).toEqual([]); // and nothing to show
    expect(states).not.toContain("reconnecting");
    const got: Prediction[] = [];
    socket.onPrediction((p) => got.push(p));
    const id = socket.predict(drawing);
    await vi.waitFor(() => expect(got).toHaveLength(1));
    expect(got[0]?.id).toBe(id);
    expect(socket.state).toBe("connected");
    socket.close();
  });

  it("sends the unanswered drawing again after the connection drops (a replica crashed)", async () => {
    const received: { id: number }[] = [];
    server = new Server(URL);
    let answer = false;
    server.on("connection", (sock) => {
      sock.on("message", (data) => {
        const msg = JSON.parse(String(data)) as { id: number };
        received.push(msg);
        if (!answer) {
          answer = true;
          sock.close({ code: 1006, reason: "", wasClean: false }); // dies before answering
          return;
        }
        const probabilities = Array.from({ length: 10 }, (_, d) => (d === 4 ? 0.9 : 0.01));
        sock.send(JSON.stringify({ type: "prediction", id: msg.id, digit: 4, probabilities }));
      });
    });
    const { socket } = makeSocket();
    const got: Prediction[] = [];
    socket.onPrediction((p) => got.push(p));
    socket.connect();
    await vi.waitFor(() => expect(socket.state).toBe("connected"));
    const id = socket.predict(drawing);
    await vi.waitFor(() => expect(got).toHaveLength(1));
    expect(received.map((m) => m.id)).toEqual([id, id]);
    expect(got[0]?.id).toBe(id);
    socket.close();
  });

  it("says why when the server refuses one socket too many, and keeps retrying", async () => {
    let refuse = true;
    server = new Server(URL);
    server.on("connection", (sock) => {
      if (refuse) {
        refuse = false;
        sock.close({ code: TOO_MANY_CLOSE_CODE, reason: "too many connections from your address (limit 32)", wasClean: true });
      }
    });
    const backoff = vi.fn(() => 10);
    const { socket } = makeSocket(backoff);
    const errors: unknown[] = [];
    socket.onError((e) => errors.push(e));
    socket.connect();
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]).toEqual({
      id: null,
      code: "too_many_connections",
      message: "too many connections from your address (limit 32)",
    });
    await vi.waitFor(() => expect(socket.state).toBe("connected"));
    expect(backoff).toHaveBeenCalledWith(1);
    socket.close();
  });
});
