/** Per-call options: `client.send(pattern, data, { timeout: 500 })`. */
export interface OccamsCallOptions {
  /**
   * ms before this call fails with rpc_timeout; also sent to the server as a
   * deadline. For `send()` it counts from each subscription, so a `retry()`
   * gets the whole timeout again.
   */
  timeout?: number;
  /** absolute deadline (epoch ms) instead of `timeout`; the same for every subscription */
  deadline?: number;
  /** extra metadata for this call (merged over the dispatch hook's) */
  metadata?: Record<string, string>;
  /** override the `idempotent` option for this call */
  idempotent?: boolean;
  /** false: never retry this call anywhere */
  retry?: boolean;
}

/** Options of `client.stream()`: the per-call options, and the stream's window. */
export interface OccamsStreamOptions extends OccamsCallOptions {
  /** items the server may send ahead of the consumer (its credit); default 64 */
  window?: number;
}
