/**
 * Turns values into bytes and back. Implementations may throw; the stream
 * layer turns a throw into `rpc_encode` / `rpc_decode` for that one request.
 */
export interface Codec {
  /** A short name for logs and the HELLO exchange. */
  readonly name: string;
  /**
   * Encodes a value. The returned bytes must stay valid until the next call
   * to `encode` on this codec (the stream copies them into its write buffer).
   */
  encode(value: unknown): Uint8Array;
  /** Decodes exactly the given bytes; an empty slice means "no value". */
  decode(bytes: Uint8Array): unknown;
}
