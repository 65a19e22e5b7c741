import { describe, expect, it } from "vitest";
import { type Clock, throttle } from "../src/lib/throttle";

/** A hand-driven clock: time moves only when the test says so. */
function manualClock() {
  let t = 0;
  let timers: { at: number; fn: () => void; id: number }[] = [];
  let nextId = 1;
  const clock: Clock = {
    now: () => t,
    setTimeout: (fn, ms) => {
      const id = nextId++;
      timers.push({ at: t + ms, fn, id });
      return id;
    },
    clearTimeout: (id) => {
      timers = timers.filter((x) => x.id !== id);
    },
  };
  const advance = (ms: number) => {
    t += ms;
    const due = timers.filter((x) => x.at <= t);
    timers = timers.filter((x) => x.at > t);
    for (const x of due) x.fn();
  };
  return { clock, advance, pending: () => timers.length };
}

describe("throttle", () => {
  it("runs the first call at once and collapses a burst into one trailing call with the latest args", () => {
    const { clock, advance } = manualClock();
    const seen: number[] = [];
    const f = throttle((n: number) => seen.push(n), 100, clock);
    f(1);
    expect(seen).toEqual([1]);
    f(2);
    advance(30);
    f(3);
    f(4);
    expect(seen).toEqual([1]);
    advance(70);
    expect(seen).toEqual([1, 4]);
  });

  it("never runs more than once per interval under a steady stream", () => {
    const { clock, advance } = manualClock();
    const times: number[] = [];
    const f = throttle(() => times.push(clock.now()), 100, clock);
    for (let i = 0; i < 50; i++) {
      f();
      advance(10);
    }
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(times.length).toBeGreaterThanOrEqual(5);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(100);
  });

  it("flush runs the pending call now; cancel drops it", () => {
    const { clock, advance, pending } = manualClock();
    const seen: string[] = [];
    const f = throttle((s: string) => seen.push(s), 100, clock);
    f("a");
    f("b");
    f.flush();
    expect(seen).toEqual(["a", "b"]);
    expect(pending()).toBe(0);
    f("c");
    f.cancel();
    advance(500);
    expect(seen).toEqual(["a", "b"]);
    f.flush(); // nothing pending: no call
    expect(seen).toEqual(["a", "b"]);
  });

  it("calls after a quiet interval run immediately again", () => {
    const { clock, advance } = manualClock();
    const seen: number[] = [];
    const f = throttle((n: number) => seen.push(n), 100, clock);
    f(1);
    advance(250);
    f(2);
    expect(seen).toEqual([1, 2]);
  });
});
