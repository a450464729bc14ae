import { ErrorCode } from '../errors.js';
import { FLAG_ERRNO, FLAG_ERROR_BYTES, FLAG_OK } from '../protocol/constants.js';
import { FEATURE_ERRNO_MESSAGE, FEATURE_ERROR_VALUE, FEATURE_STREAMING, FLAG_ERROR_VALUE, FLAG_STREAM_ITEM } from '../protocol/extensions.js';
import type { ServerConnection } from './server-connection.js';

/** Internal codes a server may answer with (ASCII, flag 2). */
export type WireErrorCode =
  | typeof ErrorCode.MethodNotFound
  | typeof ErrorCode.ServiceNotFound
  | typeof ErrorCode.Decode
  | typeof ErrorCode.Encode
  | typeof ErrorCode.Internal
  | typeof ErrorCode.InvalidVersion;

/**
 * One request on the server, handed to the Dispatch. Settle it once: the
 * first settling call wins, later ones return false and send nothing.
 * Streaming: `item()` any number of times, then `end()` (or an error).
 * A peer without the streaming extension gets only the last item, as the
 * final ok.
 */
export class ServerRequest {
  /** Nest-style metadata from the client (extension), else undefined. */
  meta: Record<string, unknown> | undefined = undefined;
  /** Epoch ms by which the caller stops waiting (extension), else undefined. */
  deadline: number | undefined = undefined;
  private done = false;
  private cancelled = false;
  private held: unknown = undefined;
  private cancelHandler: (() => void) | undefined = undefined;

  constructor(
    readonly connection: ServerConnection,
    readonly action: number | string,
    readonly seq: number,
    readonly clientId: number,
    /** the decoded message */
    readonly msg: unknown,
    /** the raw blob (a view: copy it to keep it past the request) */
    readonly blob: Buffer,
    /** fire-and-forget: nothing is sent back whatever the handler does */
    readonly isEvent: boolean,
  ) {}

  get settled(): boolean {
    return this.done;
  }
  get isCancelled(): boolean {
    return this.cancelled;
  }
  /** ms left until the caller's deadline (Infinity without one). */
  get timeLeft(): number {
    return this.deadline === undefined ? Infinity : this.deadline - Date.now();
  }

  ok(value?: unknown, blob?: Uint8Array): boolean {
    if (!this.begin()) return false;
    if (!this.isEvent) this.connection.sendValue(FLAG_OK, this.seq, value, blob);
    return this.finish();
  }

  /** One value of a streamed result. */
  item(value: unknown): boolean {
    if (this.done) return false;
    if (this.isEvent) return true;
    if (this.connection.has(FEATURE_STREAMING)) this.connection.sendValue(FLAG_STREAM_ITEM, this.seq, value, undefined);
    else this.held = value;
    return true;
  }

  /** Completes a streamed result. */
  end(): boolean {
    if (!this.begin()) return false;
    if (!this.isEvent) {
      const last = this.connection.has(FEATURE_STREAMING) ? undefined : this.held;
      this.connection.sendValue(FLAG_OK, this.seq, last, undefined);
    }
    this.held = undefined;
    return this.finish();
  }

  /**
   * A numeric user error: wire flag 1, or flag 6 carrying `message` too when
   * the client speaks that extension (v1 peers get the errno alone).
   */
  errno(code: number, message?: string): boolean {
    if (!this.begin()) return false;
    if (!this.isEvent) {
      const text = message !== undefined && this.connection.has(FEATURE_ERRNO_MESSAGE) ? Buffer.from(message, 'utf8') : undefined;
      this.connection.sendErrno(this.seq, code, text);
    }
    return this.finish();
  }

  /** A user error message or raw error bytes (wire flag 2). */
  error(message: string | Uint8Array): boolean {
    if (!this.begin()) return false;
    if (!this.isEvent) {
      const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
      this.connection.sendBytes(FLAG_ERROR_BYTES, this.seq, bytes);
    }
    return this.finish();
  }

  /**
   * A user error value, encoded with the codec: flag 4 for peers that speak
   * the extension (they decode it back), flag 2 with the same bytes for v1
   * peers (they decode with the error type they expect).
   */
  errorValue(value: unknown): boolean {
    if (!this.begin()) return false;
    if (!this.isEvent) {
      const flag = this.connection.has(FEATURE_ERROR_VALUE) ? FLAG_ERROR_VALUE : FLAG_ERROR_BYTES;
      this.connection.sendEncodedError(flag, this.seq, value);
    }
    return this.finish();
  }

  /** A framework error (`rpc_*`, wire flag 2). */
  internal(code: WireErrorCode): boolean {
    if (!this.begin()) return false;
    if (!this.isEvent) this.connection.sendBytes(FLAG_ERROR_BYTES, this.seq, Buffer.from(code, 'latin1'));
    return this.finish();
  }

  /**
   * Registers what to do when the client cancels (extension): typically
   * unsubscribing the handler's Observable. Only requests that registered
   * can be cancelled; a cancelled request is settled without a response.
   */
  onCancel(handler: () => void): void {
    if (this.done) return;
    this.cancelHandler = handler;
    this.connection.trackCancellable(this);
  }

  /** Called by the connection when a CANCEL arrives for this seq. */
  cancel(): void {
    if (this.done) return;
    this.cancelled = true;
    this.done = true;
    this.connection.settled(this);
    const handler = this.cancelHandler;
    this.cancelHandler = undefined;
    handler?.();
  }

  private begin(): boolean {
    if (this.done) return false;
    this.done = true;
    return true;
  }

  private finish(): true {
    this.cancelHandler = undefined;
    this.connection.settled(this);
    return true;
  }
}
