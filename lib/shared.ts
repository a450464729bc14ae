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
