import type { Socket } from 'node:net';

import type { Clock } from '../core/clock.js';
import { ClosedError, IoError, type OccamsError, UnreachableError } from '../errors.js';
import { grantedFeatures, serverWindow } from '../protocol/hello.js';
import { type Address, type AddressLike, formatAddress, parseAddress } from '../transport/address.js';
import { dial } from '../transport/dial.js';
import type { ResponseHandler } from './call.js';
import type { NormalizedClientStreamOptions } from './client-options.js';

/**
 * What the handshake asks of the connection it opens (ClientStream): a
 * port, so that this file and client-stream.ts do not import each other.
 */
export interface HandshakeStream {
  /** HELLO: resolves with the features granted (0 from a plain v1 server) */
  handshake(): Promise<number>;
  /** PING: resolves with the round trip */
  ping(): Promise<number>;
  destroy(err?: Error): void;
}

/** Wraps a dialled socket in a connection (ClientStream's constructor). */
export type OpenStream<S extends HandshakeStream> = (socket: Socket, opts: NormalizedClientStreamOptions, where: Address) => S;

/** What HELLO's answer sets on its connection (ClientStream). */
export interface HelloPort {
  /** the features both sides speak and the server's in-flight cap */
  negotiated(features: number, cap: number | undefined): void;
  readonly features: number;
}

/**
 * Opens a ClientStream: dial (within `connectTimeout`), then make the server
 * answer (within `handshakeTimeout`): HELLO, unless extensions are off. A
 * server that hangs up on HELLO is a plain v1 server that does not answer
 * unknown actions: it is dialled again and spoken to in plain v1.
 */
export async function connectClientStream<S extends HandshakeStream>(address: AddressLike, opts: NormalizedClientStreamOptions, open: OpenStream<S>): Promise<S> {
  const where = parseAddress(address);
  const socket = await dial(where, { tls: opts.tls, connectTimeout: opts.connectTimeout, clock: opts.clock });
  const stream = open(socket, opts, where);
  try {
    if (opts.extensions) await answered(stream, stream.handshake(), where, opts, 'HELLO');
    else await answered(stream, stream.ping(), where, opts, 'PING');
    return stream;
  } catch (err) {
    stream.destroy(err as Error);
    if (opts.extensions && err instanceof IoError) return connectPlain(where, opts, err, open);
    throw (err as OccamsError).retriable ? new UnreachableError((err as Error).message, { cause: err }) : err;
  }
}

/**
 * The fallback after a hang-up on HELLO: plain v1, proven alive with a PING
 * (a server that refuses us, e.g. at its connection limit or for a missing
 * client certificate, hangs up on that too).
 */
async function connectPlain<S extends HandshakeStream>(where: Address, opts: NormalizedClientStreamOptions, first: OccamsError, open: OpenStream<S>): Promise<S> {
  const socket = await dial(where, { tls: opts.tls, connectTimeout: opts.connectTimeout, clock: opts.clock });
  const stream = open(socket, { ...opts, extensions: false }, where);
  try {
    await answered(stream, stream.ping(), where, opts, 'PING');
    return stream;
  } catch (err) {
    stream.destroy(err as Error);
    throw new UnreachableError(`${formatAddress(where)}: ${hangUpReason(first, err as Error, opts.tls !== undefined)}`, { cause: first });
  }
}

/**
 * Why a server hung up on HELLO and again on PING, as far as we can tell.
 * A TLS error (an alert) says it; a bare hang-up is named with its likely
 * causes. The first attempt's error is the one kept (the fallback's would
 * hide a TLS reason).
 */
function hangUpReason(first: OccamsError, second: Error, tls: boolean): string {
  if (!/connection closed by peer/.test(first.message)) return `connection refused after connect: ${first.message}`;
  if (!/connection closed by peer/.test(second.message)) return `connection refused after connect: ${second.message}`;
  return tls
    ? 'the server closed the TLS connection without answering: it refused our client certificate (expired, not yet valid, self-signed or from a CA it does not trust: its log says which), or is at its connection limit'
    : 'the server closed the connection without answering: is it a TLS server (set the tls option)? A server at its connection limit does the same';
}

/** `answer`, or an UnreachableError once `handshakeTimeout` passes without one (the stream is destroyed). */
function answered<T>(stream: HandshakeStream, answer: Promise<T>, where: Address, opts: { handshakeTimeout: number; clock: Clock }, what: string): Promise<T> {
  const timer = opts.clock.setTimeout(() => {
    stream.destroy(new UnreachableError(`${formatAddress(where)} accepted the connection but did not answer ${what} within ${opts.handshakeTimeout} ms`));
  }, opts.handshakeTimeout);
  return answer.finally(() => opts.clock.clear(timer));
}

/**
 * The answer to HELLO: the features granted and the server's in-flight cap.
 * A plain v1 server answers an unknown action with an error: no extensions.
 */
export class HelloAnswer implements ResponseHandler {
  constructor(
    private readonly stream: HelloPort,
    private readonly resolve: (features: number) => void,
    private readonly reject: (err: OccamsError) => void,
  ) {}
  onResult(value: unknown): void {
    this.stream.negotiated(grantedFeatures(value), serverWindow(value));
    this.resolve(this.stream.features);
  }
  onError(err: OccamsError): void {
    if (err.retriable || err instanceof ClosedError) return this.reject(err);
    this.stream.negotiated(0, undefined);
    this.resolve(0);
  }
}
