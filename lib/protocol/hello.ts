import { MsgpackCodec } from '../codec/msgpack-codec.js';
import { ALL_FEATURES, EXTENSIONS_VERSION, FEATURE_RECORDS } from './extensions.js';

/**
 * Both halves of the HELLO exchange (docs/PROTOCOL.md). The client offers
 * its feature bits; the server answers with the bits both speak. Bodies are
 * always msgpack, whatever the value codec.
 *
 *   client ── HELLO { v, f: offered, c: codec name } ──► server
 *   client ◄── ok { v, f: offered & supported, w: window } ── server
 *   (w: the server's in-flight cap per connection; the client's window
 *   never exceeds it)
 *   (a plain v1 server answers an error, or hangs up: no extensions)
 */
export const helloCodec = new MsgpackCodec();

/** What a client offers. */
export interface HelloOffer {
  v: number;
  f: number;
  c: string;
}

export function helloOffer(codecName: string, features = ALL_FEATURES): HelloOffer {
  return { v: EXTENSIONS_VERSION, f: features, c: codecName };
}

/** A HELLO is a map of three small fields: a heavier one is garbage (offers nothing), never decoded. */
const MAX_HELLO_WEIGHT = 256;

/**
 * Server half: the bits both speak, from the client's HELLO body. Garbage
 * offers nothing. Records only with the same codec (`codecName`) on both sides.
 */
export function acceptHello(body: Uint8Array, supported = ALL_FEATURES, codecName?: string): number {
  try {
    const hello = helloCodec.decode(body, MAX_HELLO_WEIGHT) as { f?: unknown; c?: unknown } | undefined;
    if (typeof hello?.f !== 'number') return 0;
    return hello.f & (hello.c === codecName ? supported : supported & ~FEATURE_RECORDS);
  } catch {
    return 0;
  }
}

/** Server half: the answer's body; `window` is the in-flight cap the server keeps per connection. */
export function encodeHelloAnswer(features: number, window?: number): Uint8Array {
  return helloCodec.encode(window === undefined ? { v: EXTENSIONS_VERSION, f: features } : { v: EXTENSIONS_VERSION, f: features, w: window });
}

/** Client half: the bits the server's answer grants (0 when it grants none). */
export function grantedFeatures(answer: unknown): number {
  const a = answer as { f?: unknown } | undefined;
  return typeof a?.f === 'number' ? a.f & ALL_FEATURES : 0;
}

/** Client half: the server's in-flight cap per connection (`w`), or undefined when it announced none. */
export function serverWindow(answer: unknown): number | undefined {
  const w = (answer as { w?: unknown } | undefined)?.w;
  return typeof w === 'number' && Number.isSafeInteger(w) && w > 0 ? w : undefined;
}
