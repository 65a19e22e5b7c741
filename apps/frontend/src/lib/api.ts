// The serve app's REST endpoints (same origin: the serve app or nginx proxies them). The bodies'
// types are generated from the app's OpenAPI document (src/generated/api.ts, `npm run gen:types`).

import type { components } from "../generated/api";
import type { RoundResult } from "./game";

type Schemas = components["schemas"];
export type ModelInfo = Schemas["ModelInfo"];
export type RoundIn = Schemas["RoundIn"];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The server's own explanation, without the status. */
    readonly detail: string = message,
  ) {
    super(message);
  }
}

async function check(res: Response): Promise<Response> {
  if (res.ok) return res;
  let detail = res.statusText;
  try {
    const body = (await res.json()) as { detail?: unknown };
    if (body.detail !== undefined) detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    // keep the status text
  }
  throw new ApiError(res.status, `${res.status}: ${detail}`, detail);
}

export async function fetchModel(fetchImpl: typeof fetch = fetch): Promise<ModelInfo> {
  const res = await check(await fetchImpl("/model", { headers: { accept: "application/json" } }));
  return (await res.json()) as ModelInfo;
}

/** The body `POST /rounds` takes, or null for a round that cannot be saved (never dealt, or no answer). */
export function roundBody(round: RoundResult, playerId: string): RoundIn | null {
  if (round.ticket === null || round.guess === null || round.probabilities === null) return null;
  return {
    ticket: round.ticket,
    player_id: playerId,
    strokes: round.strokes,
    width: round.width,
    height: round.height,
    target: round.target,
    guess: round.guess,
    probabilities: round.probabilities,
    model_version: round.model_version,
  };
}

/** Saves a finished round as labelled player data (only ever called with the player's consent). */
export async function postRound(round: RoundResult, playerId: string, fetchImpl: typeof fetch = fetch): Promise<string> {
  const body = roundBody(round, playerId);
  if (body === null) throw new Error("this round cannot be saved: it was not dealt by the server or got no answer");
  const res = await check(
    await fetchImpl("/rounds", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
  return ((await res.json()) as Schemas["RoundCreated"]).id;
}

/** "Delete my drawings": every future data version leaves this player's rounds out. */
export async function withdrawDrawings(playerId: string, fetchImpl: typeof fetch = fetch): Promise<void> {
  await check(
    await fetchImpl("/rounds/withdrawals", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ player_id: playerId }),
    }),
  );
}

/** The test accuracy among a model's metrics, whatever the training run called it. */
export function testAccuracy(metrics: Record<string, number> | null | undefined): number | null {
  if (!metrics) return null;
  for (const key of ["test_accuracy", "test_acc", "accuracy"]) {
    const v = metrics[key];
    if (typeof v === "number") return v;
  }
  return null;
}
