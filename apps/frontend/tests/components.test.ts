import { flushPromises, mount } from "@vue/test-utils";
import { Server, WebSocket as MockWebSocket } from "mock-socket";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import App from "../src/App.vue";
import DrawPad from "../src/components/DrawPad.vue";
import ProbabilityBars from "../src/components/ProbabilityBars.vue";
import { GuessSocket } from "../src/lib/socket";
import type { Stroke } from "../src/lib/strokes";
import { SOCKET_KEY } from "../src/lib/useGuessSocket";
import type { ServerMessage } from "../src/generated/ws-server-message";
import GameView from "../src/views/GameView.vue";
import { type FakePen, drawStroke, installFakeCanvas, placeCanvas } from "./fakes";

const URL = "ws://game.test/ws";
type Msg = { type: string; id: number; target?: number; strokes: [number[], number[]][]; width: number; height: number };
let server: Server;
let received: Msg[];
let penOf: (c: Element) => FakePen;

/** The fake server: deals the wished digit (a test setup), and its model "sees" as many strokes as were
 * drawn, sure from the second stroke on. */
function answer(msg: Msg): ServerMessage {
  if (msg.type === "deal") {
    return { type: "round", id: msg.id, target: msg.target ?? 0, ticket: `t${msg.id}`, expires_in_s: 300 };
  }
  const digit = msg.strokes.length;
  const sure = digit >= 2 ? 0.95 : 0.55;
  const probabilities = Array.from({ length: 10 }, (_, d) => (d === digit ? sure : (1 - sure) / 9));
  return { type: "prediction", id: msg.id, digit, probabilities, model_uri: "models:/guessme-cnn/4", model_version: "4" };
}

function newSocket(): GuessSocket {
  return new GuessSocket({ url: URL, WebSocketImpl: MockWebSocket as unknown as typeof WebSocket, backoff: () => 250 });
}

beforeEach(() => {
  penOf = installFakeCanvas();
  received = [];
  server = new Server(URL);
  server.on("connection", (sock) => {
    sock.on("message", (data) => {
      const msg = JSON.parse(String(data)) as Msg;
      received.push(msg);
      sock.send(JSON.stringify(answer(msg)));
    });
  });
});
afterEach(() => {
  server.stop();
  vi.useRealTimers();
  localStorage.clear();
});

const line = (x0: number, y0: number, x1: number, y1: number, n = 6): [number, number][] =>
  Array.from({ length: n }, (_, i) => [x0 + ((x1 - x0) * i) / (n - 1), y0 + ((y1 - y0) * i) / (n - 1)]);

describe("DrawPad", () => {
  it("turns pointer strokes into clamped canvas strokes, paints them, and undoes/clears", async () => {
    const wrapper = mount(DrawPad, { props: { width: 400, height: 400 } });
    const canvas = wrapper.get('[data-testid="canvas"]').element;
    placeCanvas(canvas, 200, 10, 20); // shown at half size: coordinates double
    drawStroke(canvas, [
      [10, 20],
      [60, 70],
      [300, 70], // off the canvas to the right: clamped to the edge
    ]);
    const events = wrapper.emitted("change") as [Stroke[], boolean][];
    const [lastStrokes, final] = events[events.length - 1] as [Stroke[], boolean];
    expect(final).toBe(true);
    expect(lastStrokes).toEqual([
      [
        { x: 0, y: 0 },
        { x: 100, y: 100 },
        { x: 400, y: 100 },
      ],
    ]);
    const pen = penOf(canvas);
    expect(pen.calls).toContainEqual(["lineTo", 400, 100]);

    drawStroke(canvas, line(20, 30, 20, 120));
    await wrapper.vm.$nextTick();
    expect(wrapper.vm.strokeCount).toBe(2);
    await wrapper.get('[data-testid="undo"]').trigger("click");
    expect(wrapper.vm.snapshot()).toHaveLength(1);
    await wrapper.get('[data-testid="clear"]').trigger("click");
    expect(wrapper.vm.snapshot()).toHaveLength(0);
    expect(wrapper.get('[data-testid="clear"]').attributes("disabled")).toBeDefined();
    // After clearing, the last paint is a blank canvas: clear + background and no lines.
    const lastClear = pen.calls.map(([c]) => c).lastIndexOf("clearRect");
    expect(pen.calls.slice(lastClear).some(([c]) => c === "lineTo")).toBe(false);
  });

  it("ignores a second finger and drawing while disabled", () => {
    const wrapper = mount(DrawPad, { props: { disabled: true } });
    const canvas = wrapper.get('[data-testid="canvas"]').element;
    placeCanvas(canvas, 400);
    drawStroke(canvas, line(50, 50, 100, 100));
    expect(wrapper.emitted("change")).toBeUndefined();
  });
});

describe("ProbabilityBars", () => {
  it("shows ten bars with digit and value, the top one marked", () => {
    const probs = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.62, 0.05, 0.05];
    const wrapper = mount(ProbabilityBars, { props: { probabilities: probs } });
    const bars = wrapper.findAll('[data-testid^="prob-"]');
    expect(bars).toHaveLength(10);
    expect(bars.map((b) => b.attributes("data-value"))).toEqual(probs.map((p) => p.toFixed(4)));
    expect(wrapper.get('[data-testid="prob-7"]').classes()).toContain("top");
    expect(wrapper.get('[data-testid="prob-7"]').text()).toContain("62%");
  });

  it("shows zeros before any guess", () => {
    const wrapper = mount(ProbabilityBars, { props: { probabilities: null } });
    expect(wrapper.findAll('[data-testid^="prob-"]').every((b) => b.attributes("data-value") === "0.0000")).toBe(true);
  });
});

describe("App (free draw)", () => {
  it("shows its connection state and live guesses for the strokes it sends", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response("{}", { status: 200 })));
    const socket = newSocket();
    const wrapper = mount(App, { props: { socket }, attachTo: document.body });
    await vi.waitFor(() => expect(wrapper.get('[data-testid="status"]').text()).toBe("connected"));
    await wrapper.get('[data-testid="tab-free"]').trigger("click");
    const canvas = wrapper.get('[data-testid="canvas"]').element;
    placeCanvas(canvas, 400, 0, 0);
    drawStroke(canvas, line(100, 50, 100, 350));
    await vi.waitFor(() => expect(wrapper.get('[data-testid="guess"]').text()).toBe("1"));
    const last = received[received.length - 1] as Msg;
    expect(last.width).toBe(400);
    expect(last.strokes[0]?.[0].every((x) => x === 100)).toBe(true);
    expect(wrapper.get('[data-testid="prob-1"]').attributes("data-value")).toBe("0.5500");
    expect(wrapper.get('[data-testid="narration"]').attributes("aria-live")).toBe("polite");

    // The connection drops: the status says so, then the socket comes back by itself.
    server.clients()[0]?.close();
    await vi.waitFor(() => expect(wrapper.get('[data-testid="status"]').text()).toBe("reconnecting"));
    await vi.waitFor(() => expect(wrapper.get('[data-testid="status"]').text()).toBe("connected"));
    drawStroke(canvas, line(150, 50, 300, 50));
    await vi.waitFor(() => expect(wrapper.get('[data-testid="guess"]').text()).toBe("2"));
    expect(wrapper.get('[data-testid="narration"]').text()).toBe("I see a 1… I know, it's a 2!");

    // Clearing forgets the guess.
    await wrapper.get('[data-testid="clear"]').trigger("click");
    expect(wrapper.get('[data-testid="guess"]').text()).toBe("?");
    wrapper.unmount();
    expect(socket.state).toBe("closed");
  });
});

describe("App (consent)", () => {
  it("deletes my drawings: posts this browser's id, then forgets it and the consent", async () => {
    const fetchMock = vi.fn(async () => new Response('{"status":"withdrawn"}', { status: 202 }));
    vi.stubGlobal("fetch", fetchMock);
    localStorage.setItem("guessme.player", "player-0001");
    localStorage.setItem("guessme.consent", "yes");
    const socket = newSocket();
    const wrapper = mount(App, { props: { socket }, attachTo: document.body });
    await wrapper.get('[data-testid="delete-drawings"]').trigger("click");
    await vi.waitFor(() => expect(wrapper.find('[data-testid="withdrawal"]').exists()).toBe(true));
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/rounds/withdrawals");
    expect(JSON.parse(String(init.body))).toEqual({ player_id: "player-0001" });
    expect(wrapper.get('[data-testid="withdrawal"]').text()).toContain("future training data version");
    expect(localStorage.getItem("guessme.player")).not.toBe("player-0001");
    expect((wrapper.get('[data-testid="consent"]').element as HTMLInputElement).checked).toBe(false);
    wrapper.unmount();
  });
});

describe("GameView", () => {
  function mountGame(consent = false) {
    const socket = newSocket();
    socket.connect();
    const wrapper = mount(GameView, {
      props: { config: { rounds: 2, roundMs: 3000, winConfidence: 0.8 }, targets: [2, 5], consent },
      global: { provide: { [SOCKET_KEY as symbol]: socket } },
      attachTo: document.body,
    });
    return { socket, wrapper };
  }

  it("wins a round early, loses one on time, and shows the drawings with what the AI thought", async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ id: "r" }), { status: 201 }));
    vi.stubGlobal("fetch", fetchMock);
    const { socket, wrapper } = mountGame(true);
    await vi.waitFor(() => expect(wrapper.get('[data-testid="target"]').text()).toBe("2"));
    await wrapper.get('[data-testid="start"]').trigger("click");
    const canvas = wrapper.get('[data-testid="canvas"]').element;
    placeCanvas(canvas, 400, 0, 0);

    // Round 1, target 2: one stroke -> "1" (unsure); a second stroke -> "2" at 95% -> won.
    drawStroke(canvas, line(100, 50, 100, 350));
    await vi.waitFor(() => expect(wrapper.get('[data-testid="guess"]').text()).toBe("1"));
    expect(wrapper.get('[data-testid="narration"]').text()).toBe("I see a 1…");
    drawStroke(canvas, line(150, 50, 300, 50));
    await vi.waitFor(() => expect(wrapper.find('[data-testid="round-result"]').exists()).toBe(true));
    expect(wrapper.get('[data-testid="round-result"]').text()).toContain("The AI got it: 2");
    expect(wrapper.get('[data-testid="score"]').text()).toBe("1");

    // Round 2, target 5: time runs out with the AI at "1".
    await wrapper.get('[data-testid="next-round"]').trigger("click");
    await vi.waitFor(() => expect(wrapper.get('[data-testid="target"]').text()).toBe("5"));
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "performance"] });
    await wrapper.get('[data-testid="start"]').trigger("click");
    drawStroke(canvas, line(100, 50, 100, 350));
    await vi.waitFor(() => expect(wrapper.get('[data-testid="guess"]').text()).toBe("1"));
    vi.advanceTimersByTime(3100);
    await flushPromises();
    expect(wrapper.get('[data-testid="round-result"]').text()).toContain("The AI thought it was a 1");
    vi.useRealTimers();

    await wrapper.get('[data-testid="next-round"]').trigger("click");
    const over = wrapper.get('[data-testid="game-over"]');
    expect(over.get('[data-testid="final-score"]').text()).toBe("1");
    const items = over.findAll('[data-testid="gallery-item"]');
    expect(items.map((i) => i.attributes("data-won"))).toEqual(["true", "false"]);
    expect(items[1]?.text()).toContain("The AI thought: 1 (55%)");
    // Each drawing is re-rendered on its own canvas from the recorded strokes.
    const thumbs = over.findAll("canvas");
    expect(thumbs).toHaveLength(2);
    expect(penOf(thumbs[0]!.element).calls.filter(([c]) => c === "stroke")).toHaveLength(2);

    // With consent, both finished rounds were posted as labelled data.
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(2));
    const bodies = fetchMock.mock.calls.map((c) => JSON.parse(String(((c as unknown[])[1] as RequestInit).body)));
    // The server decides who won (from its own reading of the drawing): the body does not claim it.
    expect(bodies.map((b) => [b.target, b.guess, b.model_version, "won" in b])).toEqual([
      [2, 2, "4", false],
      [5, 1, "4", false],
    ]);
    // Each round carries the ticket the server dealt for it, and this browser's anonymous id.
    const deals = received.filter((m) => m.type === "deal");
    expect(deals.map((m) => m.target)).toEqual([2, 5]);
    expect(bodies.map((b) => b.ticket)).toEqual(deals.map((m) => `t${m.id}`));
    expect(new Set(bodies.map((b) => b.player_id)).size).toBe(1);
    expect(bodies[0].player_id).toBe(localStorage.getItem("guessme.player"));
    expect(bodies[0].strokes).toHaveLength(2);
    expect(wrapper.get('[data-testid="saved-count"]').text()).toContain("2 drawings");
    wrapper.unmount();
    socket.close();
  });

  it("waits for the server's digit before a round can start", async () => {
    server.stop();
    server = new Server(URL);
    const deals: Msg[] = [];
    server.on("connection", (sock) => {
      sock.on("message", (data) => {
        const msg = JSON.parse(String(data)) as Msg;
        if (msg.type === "deal") deals.push(msg);
        else sock.send(JSON.stringify(answer(msg)));
      });
    });
    const { socket, wrapper } = mountGame(false);
    await vi.waitFor(() => expect(deals).toHaveLength(1));
    expect(wrapper.get('[data-testid="target"]').text()).toBe("…");
    expect(wrapper.get('[data-testid="start"]').attributes("disabled")).toBeDefined();
    server.clients()[0]!.send(JSON.stringify({ type: "round", id: deals[0]!.id, target: 8, ticket: "t" }));
    await vi.waitFor(() => expect(wrapper.get('[data-testid="target"]').text()).toBe("8"));  // the server's pick wins
    expect(wrapper.get('[data-testid="start"]').attributes("disabled")).toBeUndefined();
    wrapper.unmount();
    socket.close();
  });

  it("asks again for a round whose answer was lost with the connection", async () => {
    server.stop();
    server = new Server(URL);
    let dropped = false;
    server.on("connection", (sock) => {
      sock.on("message", (data) => {
        const msg = JSON.parse(String(data)) as Msg;
        if (msg.type === "deal" && !dropped) {
          dropped = true;
          sock.close(); // the answer never comes
          return;
        }
        sock.send(JSON.stringify(answer(msg)));
      });
    });
    const { socket, wrapper } = mountGame(false);
    await vi.waitFor(() => expect(dropped).toBe(true));
    await vi.waitFor(() => expect(wrapper.get('[data-testid="target"]').text()).toBe("2"));
    expect(wrapper.get('[data-testid="start"]').attributes("disabled")).toBeUndefined();
    wrapper.unmount();
    socket.close();
  });

  /** Start the game (first target 2) and draw the two strokes the fake server answers "2" for. */
  async function playFirstRound(wrapper: ReturnType<typeof mountGame>["wrapper"]): Promise<void> {
    await vi.waitFor(() => expect(wrapper.get('[data-testid="target"]').text()).toBe("2"));
    await wrapper.get('[data-testid="start"]').trigger("click");
    const canvas = wrapper.get('[data-testid="canvas"]').element;
    placeCanvas(canvas, 400, 0, 0);
    drawStroke(canvas, line(100, 50, 100, 350));
    drawStroke(canvas, line(150, 50, 300, 50));
  }

  it("plays on and tells the player when saving is refused", async () => {
    const refusal = { detail: "daily limit reached: at most 200 drawings are saved per player and day", code: "daily_quota" };
    const fetchMock = vi.fn(async () => new Response(JSON.stringify(refusal), { status: 429 }));
    vi.stubGlobal("fetch", fetchMock);
    const { socket, wrapper } = mountGame(true);
    await playFirstRound(wrapper);
    await vi.waitFor(() => expect(wrapper.find('[data-testid="not-saved"]').exists()).toBe(true));
    expect(wrapper.get('[data-testid="not-saved"]').text()).toBe(`Your drawing was not saved: ${refusal.detail}`);
    await wrapper.get('[data-testid="next-round"]').trigger("click");
    await vi.waitFor(() => expect(wrapper.get('[data-testid="target"]').text()).toBe("5"));
    expect(wrapper.find('[data-testid="not-saved"]').exists()).toBe(false);
    wrapper.unmount();
    socket.close();
  });

  it("posts nothing without consent", async () => {
    const fetchMock = vi.fn(async () => new Response("{}", { status: 201 }));
    vi.stubGlobal("fetch", fetchMock);
    const { socket, wrapper } = mountGame(false);
    await playFirstRound(wrapper);
    await vi.waitFor(() => expect(wrapper.find('[data-testid="round-result"]').exists()).toBe(true));
    await flushPromises();
    expect(fetchMock).not.toHaveBeenCalled();
    wrapper.unmount();
    socket.close();
  });
});
