// A throttle with an injectable clock, so its timing is tested without waiting.

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface Throttled<A extends unknown[]> {
  (...args: A): void;
  /** Runs a pending trailing call now (e.g. on pen-up, so the final drawing is never late). */
  flush(): void;
  /** Drops a pending trailing call. */
  cancel(): void;
}

/**
 * Calls `fn` at most once per `intervalMs`: the first call runs at once, later ones within the
 * interval collapse into one trailing call with the latest arguments.
 */
export function throttle<A extends unknown[]>(
  fn: (...args: A) => void,
  intervalMs: number,
  clock: Clock = realClock,
): Throttled<A> {
  let last = -Infinity;
  let pending: A | null = null;
  let timer: unknown = null;

  const run = (args: A): void => {
    last = clock.now();
    pending = null;
    fn(...args);
  };
  const fire = (): void => {
    timer = null;
    if (pending) run(pending);
  };

  const throttled = ((...args: A): void => {
    const wait = last + intervalMs - clock.now();
    if (wait <= 0 && timer === null) {
      run(args);
      return;
    }
    pending = args;
    if (timer === null) timer = clock.setTimeout(fire, Math.max(0, wait));
  }) as Throttled<A>;

  throttled.flush = () => {
    if (timer !== null) clock.clearTimeout(timer);
    timer = null;
    if (pending) run(pending);
  };
  throttled.cancel = () => {
    if (timer !== null) clock.clearTimeout(timer);
    timer = null;
    pending = null;
  };
  return throttled;
}
