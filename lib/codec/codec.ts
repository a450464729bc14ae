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
  /**
   * Optional: encodes `value` straight into `target` from `offset` on (the
   * stream's write buffer), never past `target.length`. Returns the offset
   * after the last byte, or, when the value did not fit there, its bytes as
   * `encode` returns them. The bytes of `target` from `offset` on are
   * undefined afterwards either way.
   */
  encodeInto?(value: unknown, target: Uint8Array, offset: number): number | Uint8Array;
  /**
   * Decodes exactly the given bytes; an empty slice means "no value".
   * `maxWeight`, when given, bounds the work the decode may take (a server
   * passes its `maxRequestWeight`): a value past it is refused (a throw)
   * before it is decoded. msgpack weighs values as msgpack-check.ts says; a
   * codec with no such measure may ignore it, and bounds its own work.
   */
  decode(bytes: Uint8Array, maxWeight?: number): unknown;
  /**
   * Optional: a codec for one connection whose peer agreed to it in HELLO
   * (FEATURE_RECORDS), or undefined when this codec offers none. It keeps
   * state across the values it encodes and decodes (msgpack: the object
   * shapes already described on that connection), so every value it
   * encodes must reach the peer, in the order encoded, and every value the
   * peer encoded with its own must be decoded by it, in the order received.
   * It decodes to the same values as this codec.
   */
  session?(): Codec | undefined;
  /**
   * Optional, a session's: how many property names its peer has made it
   * learn so far (msgpack: keys of the record shapes described that it had
   * not seen). A new name costs the receiver far more than its bytes; a
   * server paces a connection by it (RpcServerOptions.newKeyRate).
   */
  readonly newKeys?: number;
  /**
   * Optional: a counter, for one connection, of the property names new to
   * it in the plain maps of the messages it is given (after they were
   * decoded): an estimate, as msgpack's samples one message in sixteen. A
   * server paces a connection by it and by `newKeys` (newKeyRate).
   */
  keyCensus?(): NewKeyCount;
}

/** Counts the property names new to one connection in each message it decodes (Codec.keyCensus). */
export interface NewKeyCount {
  count(msg: Uint8Array): number;
}
