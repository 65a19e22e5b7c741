// The game's rules, as pure functions of time and predictions.

import type { Prediction } from "./socket";
import type { WireStroke } from "./strokes";

export interface GameConfig {
  rounds: number;
  roundMs: number;
  /** The AI wins a round early when its top guess is the target with at least this probability. */
  winConfidence: number;
}

export const DEFAULT_CONFIG: GameConfig = { rounds: 6, roundMs: 20_000, winConfidence: 0.8 };

export interface RoundResult {
  target: number;
  /** The server's signed ticket for this round (null: it was never dealt one, so it cannot be saved). */
  ticket: string | null;
  strokes: WireStroke[];
  width: number;
  height: number;
  /** The AI's last top guess (null: nothing was drawn or no answer came). */
  guess: number | null;
  probabilities: number[] | null;
  model_uri: string | null;
  model_version: string | null;
  won: boolean;
  elapsedMs: number;
}

export function topProbability(p: Pick<Prediction, "digit" | "probabilities">): number {
  return p.probabilities[p.digit] ?? 0;
}

export function isWin(target: number, p: Pick<Prediction, "digit" | "probabilities">, threshold: number): boolean {
  return p.digit === target && topProbability(p) >= threshold;
}

export function remainingMs(startedAt: number, now: number, roundMs: number): number {
  return Math.max(0, roundMs - (now - startedAt));
}

export function score(results: readonly RoundResult[]): number {
  return results.filter((r) => r.won).length;
}

/**
 * Game settings from the page's query string, for demos and the browser tests:
 * `?rounds=2&targets=3,7&seconds=10`. Anything invalid falls back to the defaults.
 */
export function configFromQuery(search: string, base: GameConfig = DEFAULT_CONFIG): {
  config: GameConfig;
  targets: number[] | null;
} {
  const q = new URLSearchParams(search);
  const int = (key: string, lo: number, hi: number): number | null => {
    const v = Number(q.get(key));
    return q.has(key) && Number.isInteger(v) && v >= lo && v <= hi ? v : null;
  };
  const targets = (q.get("targets") ?? "")
    .split(",")
    .filter((t) => /^\d$/.test(t.trim()))
    .map(Number);
  const rounds = int("rounds", 1, 20) ?? (targets.length || base.rounds);
  const seconds = int("seconds", 3, 120);
  return {
    config: { ...base, rounds, roundMs: seconds ? seconds * 1000 : base.roundMs },
    targets: targets.length ? targets : null,
  };
}
