/**
 * Time, injected. Everything that waits (the timeout wheels, heartbeats,
 * idle close, close waits, backoff, discovery) asks a Clock, so tests drive
 * time with a fake one instead of sleeping. Timers are unref'd: a pending
 * timeout never keeps a process alive on its own.
 */
export interface Clock {
  /** epoch milliseconds */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  setInterval(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timeout or an interval; undefined is ignored. */
  clear(handle: TimerHandle | undefined): void;
}

/** Opaque timer handle (a Node Timeout for the system clock). */
export type TimerHandle = object | number;

export const systemClock: Clock = {
  now: Date.now,
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref();
    return t;
  },
  clear(handle) {
    if (handle !== undefined) clearTimeout(handle as NodeJS.Timeout);
  },
};

/** Resolves after `ms` on `clock` (for close waits). */
export function sleep(clock: Clock, ms: number): { promise: Promise<void>; cancel(): void } {
  let handle: TimerHandle | undefined;
  const promise = new Promise<void>((resolve) => {
    handle = clock.setTimeout(resolve, ms);
  });
  return { promise, cancel: () => clock.clear(handle) };
}

/** `promise`, or the error `timedOut()` gives after `ms` on `clock` (the promise is left to settle on its own). */
export function withTimeout<T>(promise: Promise<T>, ms: number, clock: Clock, timedOut: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimeout(() => reject(timedOut()), ms);
    promise.then(
      (v) => {
        clock.clear(timer);
        resolve(v);
      },
      (err: unknown) => {
        clock.clear(timer);
        reject(err);
      },
    );
  });
}
