/**
 * The error catalogue. Every error the library raises is an `OccamsError`
 * with a stable `code`; retry decisions read `retriable`, never messages.
 *
 * Two families:
 * - internal errors (`rpc_*`): the framework's own. The first nine are the
 *   occams v1 wire codes (sent as flag 2 with the ASCII code as the blob);
 *   the rest are raised locally and never sent.
 * - user errors: what a handler chose to fail with (errno, message, value).
 */

export const ErrorCode = {
  // occams v1 wire codes
  Unreachable: 'rpc_unreachable',
  Io: 'rpc_io_err',
  Timeout: 'rpc_timeout',
  MethodNotFound: 'rpc_method_notfound',
  ServiceNotFound: 'rpc_service_notfound',
  Encode: 'rpc_encode',
  Decode: 'rpc_decode',
  Internal: 'rpc_internal_err',
  InvalidVersion: 'rpc_invalid_ver',
  // local codes
  Protocol: 'rpc_protocol',
  FrameTooLarge: 'rpc_frame_too_large',
  QueueFull: 'rpc_queue_full',
  Closed: 'rpc_closed',
  InvalidOption: 'rpc_invalid_option',
  IllegalState: 'rpc_illegal_state',
  MissingDependency: 'rpc_missing_dependency',
  /** the server does not answer reflection (describeServer): its `reflection` option is off, or it is a plain v1 peer */
  ReflectionOff: 'rpc_reflection_off',
  // lifecycle codes (wire codes towards peers that speak the extensions)
  Cancelled: 'rpc_cancelled',
  StreamOverflow: 'rpc_stream_overflow',
  GoingAway: 'rpc_going_away',
  /** refused unrun: the server is at its concurrency limit, or the request could not start before its deadline (peers that negotiated FEATURE_OVERLOADED) */
  Overloaded: 'rpc_overloaded',
  // user errors
  UserErrno: 'user_errno',
  UserError: 'user_error',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes a request may be retried after (on another connection or server). */
const RETRIABLE: ReadonlySet<string> = new Set([ErrorCode.Unreachable, ErrorCode.Io, ErrorCode.Timeout, ErrorCode.Overloaded]);
/** Codes that say the server never started the request: retrying it cannot run it twice. */
const NEVER_RAN: ReadonlySet<string> = new Set([ErrorCode.Overloaded]);

export class OccamsError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
  get retriable(): boolean {
    return RETRIABLE.has(this.code);
  }
  /**
   * True when the server said it never started the request (`rpc_overloaded`):
   * it may be retried elsewhere whether or not it is idempotent.
   */
  get neverRan(): boolean {
    return NEVER_RAN.has(this.code);
  }
  /** True for errors produced by the framework rather than a handler. */
  get internal(): boolean {
    return this.code.startsWith('rpc_');
  }
  /** 'OccamsError', or an application subclass's own class name (the package's classes set theirs below). */
  override get name(): string {
    return this.constructor === OccamsError ? 'OccamsError' : this.constructor.name;
  }
}

/**
 * An error for an end the stream layer decides itself (a CANCEL read, a
 * deadline passed), made without a stack trace: it would show only the
 * framework's own frames, and capturing one costs microseconds, which a
 * peer cancelling calls as fast as it can turns into most of the server's
 * time (measured: 22 % of its CPU in the constructor, bench/hostile.ts).
 */
export function stackless<E extends Error>(ErrorClass: new (message: string) => E, message: string): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new ErrorClass(message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export class UnreachableError extends OccamsError {
  constructor(message = 'address unreachable', options?: { cause?: unknown }) {
    super(ErrorCode.Unreachable, message, options);
  }
}
export class IoError extends OccamsError {
  constructor(message = 'connection lost', options?: { cause?: unknown }) {
    super(ErrorCode.Io, message, options);
  }
}
export class TimeoutError extends OccamsError {
  constructor(message = 'request timed out', options?: { cause?: unknown }) {
    super(ErrorCode.Timeout, message, options);
  }
}
export class MethodNotFoundError extends OccamsError {
  constructor(message = 'method not found', options?: { cause?: unknown }) {
    super(ErrorCode.MethodNotFound, message, options);
  }
}
export class ServiceNotFoundError extends OccamsError {
  constructor(message = 'service not found', options?: { cause?: unknown }) {
    super(ErrorCode.ServiceNotFound, message, options);
  }
}
export class EncodeError extends OccamsError {
  constructor(message = 'cannot encode value', options?: { cause?: unknown }) {
    super(ErrorCode.Encode, message, options);
  }
}
export class DecodeError extends OccamsError {
  constructor(message = 'cannot decode message', options?: { cause?: unknown }) {
    super(ErrorCode.Decode, message, options);
  }
}
export class InternalError extends OccamsError {
  constructor(message = 'internal server error', options?: { cause?: unknown }) {
    super(ErrorCode.Internal, message, options);
  }
}
export class InvalidVersionError extends OccamsError {
  constructor(message = 'unsupported protocol version', options?: { cause?: unknown }) {
    super(ErrorCode.InvalidVersion, message, options);
  }
}
/** The peer broke the framing rules (bad magic, bad flag, bad length...). */
export class ProtocolError extends OccamsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Protocol, message, options);
  }
}
export class FrameTooLargeError extends OccamsError {
  readonly size: number;
  readonly limit: number;
  /** Without a size: the peer refused a frame of ours as too large (it sent the code, not the sizes). */
  constructor(size = 0, limit = 0) {
    super(ErrorCode.FrameTooLarge, size === 0 ? "the request exceeds the server's maxFrameSize" : `frame of ${size} bytes exceeds maxFrameSize ${limit}`);
    this.size = size;
    this.limit = limit;
  }
}
/** The window is full and so is the bounded queue of waiting callers. */
export class QueueFullError extends OccamsError {
  constructor(message = 'request queue is full') {
    super(ErrorCode.QueueFull, message);
  }
}
export class ClosedError extends OccamsError {
  constructor(message = 'client is closed', options?: { cause?: unknown }) {
    super(ErrorCode.Closed, message, options);
  }
}
export class InvalidOptionError extends OccamsError {
  readonly option: string;
  constructor(option: string, message: string) {
    super(ErrorCode.InvalidOption, `invalid option ${option}: ${message}`);
    this.option = option;
  }
}

/** An optional peer dependency a feature needs is not installed (e.g. `@opentelemetry/api` for tracing). */
export class MissingDependencyError extends OccamsError {
  readonly dependency: string;
  constructor(dependency: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.MissingDependency, message, options);
    this.dependency = dependency;
  }
}

/** A component was asked to move between states its table forbids: a bug in this library. */
export class IllegalStateError extends OccamsError {
  constructor(message: string) {
    super(ErrorCode.IllegalState, message);
  }
}

/**
 * Server side: the request was abandoned by its caller (CANCEL, or the
 * connection went away); the reason a handler's `ctx.signal` aborts with.
 */
export class CancelledError extends OccamsError {
  constructor(message = 'request cancelled', options?: { cause?: unknown }) {
    super(ErrorCode.Cancelled, message, options);
  }
}
/** A streamed result produced items faster than its consumer took them, past the server's per-stream buffer. */
export class StreamOverflowError extends OccamsError {
  constructor(
    message = "stream overflowed the server's streamBufferBytes: its handler pushed items faster than this client took them; return an AsyncIterable (pulled as the client takes items) instead of a pushing Observable, or raise streamBufferBytes",
    options?: { cause?: unknown },
  ) {
    super(ErrorCode.StreamOverflow, message, options);
  }
}
/** The server closed gracefully while this stream was open (after its grace period). */
export class GoingAwayError extends OccamsError {
  constructor(message = 'server is closing', options?: { cause?: unknown }) {
    super(ErrorCode.GoingAway, message, options);
  }
}

/** The server does not answer reflection (`describeServer`): its `reflection` option is off, or it is a plain v1 peer. */
export class ReflectionOffError extends OccamsError {
  constructor(message = 'the server does not answer reflection (its reflection option is off, or it is a plain v1 peer)', options?: { cause?: unknown }) {
    super(ErrorCode.ReflectionOff, message, options);
  }
}

/**
 * The server did not run the request: it was at its concurrency limit with
 * its queue full, or the request could not start before its deadline
 * (`rpc_overloaded`). Retriable, and `neverRan`: another server may take it.
 */
export class OverloadedError extends OccamsError {
  constructor(message = 'server overloaded: the request was not run', options?: { cause?: unknown }) {
    super(ErrorCode.Overloaded, message, options);
  }
}

/**
 * A handler failed with a numeric code: wire flag 1 (errno only), or the
 * extension flag 6 (errno and the handler's message, from servers that
 * speak it).
 */
export class RemoteErrnoError extends OccamsError {
  readonly errno: number;
  /** The handler's own message, when the server sent one (flag 6); `message` falls back to a generic one. */
  readonly reason: string | undefined;
  constructor(errno: number, message?: string) {
    super(ErrorCode.UserErrno, message ?? `remote error errno ${errno}`);
    this.errno = errno;
    this.reason = message;
  }
}

/**
 * A handler failed with bytes (wire flag 2): a UTF-8 message, or (from
 * servers speaking the extensions) a value encoded with the codec.
 */
export class RemoteError extends OccamsError {
  /** The raw error bytes as received, in memory of their own (see `ownedBytes`). */
  readonly data: Buffer;
  /** The decoded error value when the server sent one, else the message. */
  readonly error: unknown;
  /**
   * `error`, when given, must have been decoded from `data` itself (or hold
   * no views at all): values a codec decodes may be views into its input.
   */
  constructor(data: Uint8Array, error?: unknown) {
    const own = ownedBytes(data);
    const message = error === undefined ? own.toString('utf8') : describe(error);
    super(ErrorCode.UserError, message);
    this.data = own;
    this.error = error === undefined ? message : error;
  }
}

/**
 * Bytes an error may keep: `bytes` itself when it is the whole of its own
 * memory, else a copy in unpooled memory. A view into a shared buffer (the
 * socket's read buffer, Node's 8 KiB `Buffer.from` pool) would show other
 * requests' bytes to whoever logs `err.data.buffer`, and pin that memory.
 */
export function ownedBytes(bytes: Uint8Array): Buffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && !(bytes.buffer instanceof SharedArrayBuffer)) {
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, 0, bytes.byteLength);
  }
  const copy = Buffer.allocUnsafeSlow(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as { message?: unknown }).message === 'string') {
    return (value as { message: string }).message;
  }
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

const WIRE_ERRORS: Record<string, new () => OccamsError> = {
  [ErrorCode.Unreachable]: UnreachableError,
  [ErrorCode.Io]: IoError,
  [ErrorCode.Timeout]: TimeoutError,
  [ErrorCode.MethodNotFound]: MethodNotFoundError,
  [ErrorCode.ServiceNotFound]: ServiceNotFoundError,
  [ErrorCode.Encode]: EncodeError,
  [ErrorCode.Decode]: DecodeError,
  [ErrorCode.Internal]: InternalError,
  [ErrorCode.InvalidVersion]: InvalidVersionError,
  [ErrorCode.StreamOverflow]: StreamOverflowError,
  [ErrorCode.GoingAway]: GoingAwayError,
  [ErrorCode.FrameTooLarge]: FrameTooLargeError,
  [ErrorCode.Overloaded]: OverloadedError,
};

/**
 * Turns flag-2 error bytes into an error: `rpc_*` strings are the framework's
 * reserved internal codes, anything else is the handler's own message.
 */
export function errorFromWireBytes(data: Uint8Array): OccamsError {
  // 'r' 'p' 'c' '_'
  if (data.length >= 4 && data[0] === 0x72 && data[1] === 0x70 && data[2] === 0x63 && data[3] === 0x5f) {
    const code = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
    const Known = WIRE_ERRORS[code];
    return Known ? new Known() : new OccamsError(code, `remote internal error ${code}`);
  }
  return new RemoteError(data);
}

/**
 * Each class's `name`, set explicitly (as undici does): a minifier renames
 * classes, and `constructor.name` with them. (OccamsError keeps its getter,
 * so an application's own subclasses are named by their class.)
 */
const NAMED = {
  UnreachableError,
  IoError,
  TimeoutError,
  MethodNotFoundError,
  ServiceNotFoundError,
  EncodeError,
  DecodeError,
  InternalError,
  InvalidVersionError,
  ProtocolError,
  FrameTooLargeError,
  QueueFullError,
  ClosedError,
  InvalidOptionError,
  MissingDependencyError,
  IllegalStateError,
  CancelledError,
  StreamOverflowError,
  GoingAwayError,
  OverloadedError,
  RemoteErrnoError,
  RemoteError,
  ReflectionOffError,
};
for (const [name, ErrorClass] of Object.entries(NAMED)) {
  Object.defineProperty(ErrorClass.prototype, 'name', { value: name, writable: true, configurable: true, enumerable: false });
}
