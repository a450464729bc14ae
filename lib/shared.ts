// What both sides of the stream layer share with users: errors, codecs, addresses, the wire.
export {
  CancelledError,
  ClosedError,
  DecodeError,
  EncodeError,
  ErrorCode,
  FrameTooLargeError,
  GoingAwayError,
  InternalError,
  InvalidOptionError,
  InvalidVersionError,
  IoError,
  MethodNotFoundError,
  MissingDependencyError,
  OccamsError,
  ProtocolError,
  QueueFullError,
  RemoteErrnoError,
  RemoteError,
  ServiceNotFoundError,
  StreamOverflowError,
  TimeoutError,
  UnreachableError,
} from './errors.js';
export { type Codec, MsgpackCodec, msgpackCodec } from './codec/index.js';
export { type Address, type AddressLike, type TcpAddress, type UnixAddress, formatAddress, parseAddress } from './transport/address.js';
export * as protocol from './protocol/index.js';
export {
  CHANNELS,
  type ChannelName,
  type ClientCallErrorMessage,
  type ClientCallInfo,
  type ClientCallResponseMessage,
  type ClientCallSentMessage,
  type ClientCallStartMessage,
  type ConnectionCloseMessage,
  type ConnectionInfo,
  type ConnectionOpenMessage,
  type GoawayMessage,
  type PoolStateMessage,
  type ServerRequestEndMessage,
  type ServerRequestErrorMessage,
  type ServerRequestInfo,
  type ServerRequestStartMessage,
} from './core/diagnostics.js';
export * from './tracing/index.js';
