import { EndReason } from './request-end.js';

/**
 * What the stream layer did on its own, summed over a server's life (all
 * connections, closed ones included): requests it ended before their
 * handler did, by reason, and requests it refused. Plain fields: counting
 * costs an increment.
 */
export interface ServerCounters {
  /** indexed by EndReason */
  ended: number[];
  /** of those, requests ended while still waiting in a connection's queue (their handler never ran) */
  droppedQueued: number;
  /** requests answered rpc_unreachable at once (queue full, or the server closing): never run */
  refused: number;
  /** requests refused at once past the concurrency limit and its queue, or as they could not start before their deadline: never run */
  overloaded: number;
  /** requests taken out of a queue unrun, answered at once: their deadline had passed, or they waited past maxQueueWait */
  expiredQueued: number;
  /** most bytes one pushed stream queued */
  peakStreamBuffer: number;
  /** requests after which a connection's reading paused for the new property names its peer made the server learn (newKeyRate) */
  keyPaced: number;
  /** turns after which a connection's reading sat out, having held the event loop past READ_OVERSTAY_MS while other connections were reading */
  satOut: number;
}

export function newCounters(): ServerCounters {
  return { ended: [0, 0, 0, 0, 0, 0, 0], droppedQueued: 0, refused: 0, overloaded: 0, expiredQueued: 0, peakStreamBuffer: 0, keyPaced: 0, satOut: 0 };
}

/** The counters by name (for stats and reports). */
export function describeCounters(c: ServerCounters): {
  cancelled: number;
  deadlines: number;
  handlerTimeouts: number;
  disconnected: number;
  overflowed: number;
  shutdown: number;
  encodeFailed: number;
  droppedQueued: number;
  refused: number;
  overloaded: number;
  expiredQueued: number;
  peakStreamBuffer: number;
  keyPaced: number;
  satOut: number;
} {
  return {
    cancelled: c.ended[EndReason.Cancel]!,
    deadlines: c.ended[EndReason.Deadline]!,
    handlerTimeouts: c.ended[EndReason.HandlerTimeout]!,
    disconnected: c.ended[EndReason.Disconnect]!,
    overflowed: c.ended[EndReason.Overflow]!,
    shutdown: c.ended[EndReason.Shutdown]!,
    encodeFailed: c.ended[EndReason.Encode]!,
    droppedQueued: c.droppedQueued,
    refused: c.refused,
    overloaded: c.overloaded,
    expiredQueued: c.expiredQueued,
    peakStreamBuffer: c.peakStreamBuffer,
    keyPaced: c.keyPaced,
    satOut: c.satOut,
  };
}

/** `closing` is the graceful drain: GOAWAY sent, still reading, owed answers still go out. */
export type ServerConnectionState = 'open' | 'closing' | 'closed';

export interface ServerConnectionStats {
  state: ServerConnectionState;
  /** handlers running (dispatched, not settled) */
  inFlight: number;
  /** held past the in-flight cap */
  queued: number;
  /** read and let past the connection's cap, waiting for the server's concurrency limit */
  waiting: number;
  features: number;
  writeBuffer: number;
  streamBuffer: number;
}
