import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, configFromQuery, isWin, remainingMs, score } from "../src/lib/game";
import { playerId, resetPlayerId } from "../src/lib/player";
import type { RoundResult } from "../src/lib/game";
import { guessTrail, narrate, withArticle } from "../src/lib/narration";

describe("narration", () => {
  it("uses the right article", () => {
    expect(withArticle(8)).toBe("an 8");
    expect(withArticle(7)).toBe("a 7");
  });

  it("keeps distinct guesses in the order they were last said", () => {
    expect(guessTrail([1, 1, 7, 1, 4, 7])).toEqual([1, 4, 7]);
    expect(guessTrail([0, 1, 2, 3, 4], 2)).toEqual([3, 4]);
  });

  it("muses while unsure and is sure when confident", () => {
    expect(narrate({ guesses: [1, 7], confidence: 0.6, sureAt: 0.8 })).toBe("I see a 1… or a 7…");
    expect(narrate({ guesses: [1, 7, 7], confidence: 0.95, sureAt: 0.8 })).toBe("I see a 1… I know, it's a 7!");
    expect(narrate({ guesses: [3], confidence: 0.2, sureAt: 0.8 })).toBe("Hmm… maybe a 3…");
    expect(narrate({ guesses: [], confidence: 0, sureAt: 0.8 })).toMatch(/draw/i);
  });
});

describe("game rules", () => {
  it("wins only on the target above the threshold", () => {
    const probs = (d: number, p: number) => Array.from({ length: 10 }, (_, i) => (i === d ? p : (1 - p) / 9));
    expect(isWin(7, { digit: 7, probabilities: probs(7, 0.9) }, 0.8)).toBe(true);
    expect(isWin(7, { digit: 7, probabilities: probs(7, 0.5) }, 0.8)).toBe(false);
    expect(isWin(7, { digit: 1, probabilities: probs(1, 0.99) }, 0.8)).toBe(false);
  });

  it("counts time down to zero and scores won rounds", () => {
    expect(remainingMs(1000, 6000, 20_000)).toBe(15_000);
    expect(remainingMs(1000, 30_000, 20_000)).toBe(0);
    const r = (won: boolean) => ({ won }) as RoundResult;
    expect(score([r(true), r(false), r(true)])).toBe(2);
  });

  it("reads rounds, targets and seconds from the query string, ignoring nonsense", () => {
    expect(configFromQuery("?targets=3,7")).toEqual({ config: { ...DEFAULT_CONFIG, rounds: 2 }, targets: [3, 7] });
    expect(configFromQuery("?rounds=1&seconds=10").config).toEqual({ ...DEFAULT_CONFIG, rounds: 1, roundMs: 10_000 });
    expect(configFromQuery("?rounds=-4&seconds=abc&targets=x,12")).toEqual({ config: DEFAULT_CONFIG, targets: null });
  });
});

describe("player id", () => {
  it("is created once, kept in storage, replaced when damaged or reset", () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    const id = playerId(storage);
    expect(id).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
    expect(playerId(storage)).toBe(id);
    store.set("guessme.player", "../../etc/passwd");
    const fresh = playerId(storage);
    expect(fresh).not.toBe(id);
    expect(fresh).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
    expect(resetPlayerId(storage)).not.toBe(fresh);
  });

  it("still gives an id when storage is blocked", () => {
    const blocked = {
      getItem: () => {
        throw new Error("blocked");
      },
      setItem: () => {
        throw new Error("blocked");
      },
    };
    expect(playerId(blocked)).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
  });
});
