// The anonymous player id: a random id kept in this browser's localStorage, sent with each shared
// drawing. It names no one; it is what lets "Delete my drawings" find this browser's drawings.

const PLAYER_KEY = "guessme.player";

function newId(): string {
  if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return Array.from({ length: 32 }, () => Math.floor(Math.random() * 16).toString(16)).join("");
}

/** This browser's id, created on first use (storage blocked: an id for this visit only). */
export function playerId(storage: Pick<Storage, "getItem" | "setItem"> | null = safeStorage()): string {
  let known: string | null = null;
  try {
    known = storage?.getItem(PLAYER_KEY) ?? null;
  } catch {
    // storage blocked: a new id for this visit
  }
  if (known && /^[A-Za-z0-9_-]{8,64}$/.test(known)) return known;
  return resetPlayerId(storage);
}

/** A fresh id (after "Delete my drawings": later drawings are not covered by the withdrawal). */
export function resetPlayerId(storage: Pick<Storage, "setItem"> | null = safeStorage()): string {
  const id = newId();
  try {
    storage?.setItem(PLAYER_KEY, id);
  } catch {
    // storage blocked: the id holds for this visit
  }
  return id;
}

function safeStorage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}
