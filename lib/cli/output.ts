import { OccamsError, RemoteErrnoError, RemoteError } from '../stream/index.js';

/**
 * What the CLI writes: results as JSON on stdout, diagnostics on stderr,
 * colour only on a terminal (and never with NO_COLOR set).
 */
export interface Streams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export function colours(stream: { isTTY?: boolean }): (code: number, text: string) => string {
  const on = stream.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
  return on ? (code, text) => `\x1b[${code}m${text}\x1b[0m` : (_code, text) => text;
}

/** JSON for values msgpack may carry that JSON has no form for: bytes as {"$bytes": base64}, bigints as strings, Maps as objects. */
function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (value !== null && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return { $bytes: Buffer.from((value as { data: number[] }).data).toString('base64') };
  }
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
}

/** A value as JSON text; `undefined` (no value) as null. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value === undefined ? null : value, replacer, indent) ?? 'null';
}

/** A failure for stderr: its code and message (and a remote error's errno or value). */
export function describeFailure(err: unknown): string {
  if (err instanceof RemoteErrnoError) return `${err.code} ${err.errno}: ${err.reason ?? err.message}`;
  if (err instanceof RemoteError) {
    return typeof err.error === 'string' ? `${err.code}: ${err.error}` : `${err.code}: ${err.message}\n  value: ${toJson(err.error)}`;
  }
  if (err instanceof OccamsError) {
    const cause = (err as { cause?: unknown }).cause;
    const why = cause instanceof Error && !err.message.includes(cause.message) ? ` (${cause.message})` : '';
    return `${err.code}: ${err.message}${why}`;
  }
  return err instanceof Error ? err.message : String(err);
}
