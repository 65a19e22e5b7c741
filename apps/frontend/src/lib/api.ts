// The serve app's REST endpoints (same origin: the serve app or nginx proxies them).

import type { RoundResult } from "./game";

export interface ModelInfo {
  model_uri: string | null;
  model_version: string | number | null;
  loaded_at?: string | null;
  metrics?: Record<string, number> | null;
  last_error?: string | null;
  live?: { rounds: number; won: number; lost: number; accuracy: number | null } | null;
}

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

/** Saves a finished round as labelled player data (only ever called with the player's consent). */
export async function postRound(round: RoundResult, playerId: string, fetchImpl: typeof fetch = fetch): Promise<string> {
  const body = {
    ticket: round.ticket,
    player_id: playerId,
    strokes: round.strokes,
    width: round.width,
    height: round.height,
    target: round.target,
    guess: round.guess,
    probabilities: round.probabilities,
    model_uri: round.model_uri,
    model_version: round.model_version,
    won: round.won,
  };
  const res = await check(
    await fetchImpl("/rounds", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
  return ((await res.json()) as { id: string }).id;
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
