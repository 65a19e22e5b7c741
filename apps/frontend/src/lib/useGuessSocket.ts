// Vue glue: the app's single GuessSocket, shared through provide/inject, plus the live-guess
// state of one drawing (throttled requests, stale answers ignored).

import { type InjectionKey, type Ref, inject, onScopeDispose, ref } from "vue";
import { type ConnectionState, GuessSocket, type Prediction, socketUrl } from "./socket";
import { type Stroke, hasInk, toDrawing } from "./strokes";
import { throttle } from "./throttle";

export const SOCKET_KEY: InjectionKey<GuessSocket> = Symbol("guess-socket");

/** Interval between live requests while drawing: ~8 guesses/s feels live and stays cheap. */
export const SEND_INTERVAL_MS = 120;

export function createGuessSocket(): GuessSocket {
  // Configuration (build-time VITE_GUESSME_WS_URL) wins over the page's own origin.
  const override = import.meta.env.VITE_GUESSME_WS_URL as string | undefined;
  return new GuessSocket({ url: socketUrl(window.location, override) });
}

export function useSocket(): GuessSocket {
  const socket = inject(SOCKET_KEY);
  if (!socket) throw new Error("no GuessSocket provided (App provides it)");
  return socket;
}

export function useConnectionState(socket: GuessSocket): Ref<ConnectionState> {
  const state = ref<ConnectionState>(socket.state);
  onScopeDispose(socket.onState((s) => (state.value = s)));
  return state;
}

export interface LiveGuess {
  prediction: Ref<Prediction | null>;
  /** Top guesses for the current drawing, oldest first (for the narration). */
  guesses: Ref<number[]>;
  error: Ref<string | null>;
  /** The drawing changed; `final` (pen up) sends at once instead of waiting for the throttle. */
  update(strokes: readonly Stroke[], width: number, height: number, final?: boolean): void;
  /** A new, empty drawing: forget guesses and ignore answers still on their way. */
  reset(): void;
}

export function useLiveGuess(socket: GuessSocket, intervalMs = SEND_INTERVAL_MS): LiveGuess {
  const prediction = ref<Prediction | null>(null);
  const guesses = ref<number[]>([]);
  const error = ref<string | null>(null);
  let firstId = Infinity; // answers to requests before the current drawing started are stale
  let shownId = 0;
  const sent = new Set<number>();

  const send = throttle((strokes: Stroke[], width: number, height: number) => {
    const id = socket.predict(toDrawing(strokes, width, height));
    sent.add(id);
    if (firstId === Infinity) firstId = id;
  }, intervalMs);

  onScopeDispose(
    socket.onPrediction((p) => {
      if (!sent.has(p.id) || p.id < firstId || p.id <= shownId) return;
      shownId = p.id;
      error.value = null;
      prediction.value = p;
      if (guesses.value[guesses.value.length - 1] !== p.digit) guesses.value = [...guesses.value, p.digit];
    }),
  );
  onScopeDispose(
    socket.onError((e) => {
      if (e.id === null || sent.has(e.id)) error.value = e.message;
    }),
  );
  onScopeDispose(() => send.cancel());

  function reset(): void {
    send.cancel();
    socket.dropPending();
    firstId = Infinity;
    prediction.value = null;
    guesses.value = [];
    error.value = null;
  }

  function update(strokes: readonly Stroke[], width: number, height: number, final = false): void {
    if (!hasInk(strokes)) {
      reset();
      return;
    }
    // Copy: the drawing keeps growing while a trailing call waits.
    send(strokes.map((s) => [...s]), width, height);
    if (final) send.flush();
  }

  return { prediction, guesses, error, update, reset };
}
