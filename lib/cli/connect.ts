import fs from 'node:fs';
import type tls from 'node:tls';

import { FailoverPool, type FailoverPoolOptions, InvalidOptionError, parseAddress } from '../stream/index.js';
import { duration } from './command-line.js';
import { UsageError } from './exit-codes.js';

/** What the connection options say (command-line.ts CONNECTION_OPTIONS). */
export interface ConnectionFlags {
  timeout?: string;
  tls?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  insecure?: boolean;
}

export const DEFAULT_CLI_TIMEOUT = 10_000;

/** The addresses of ADDRESS: one or several, comma-separated (host:port, [v6]:port, unix:/path). */
export function addressList(text: string): string[] {
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length === 0) throw new UsageError('ADDRESS: expected host:port, [v6]:port or unix:/path');
  for (const a of list) {
    try {
      parseAddress(a, 'ADDRESS');
    } catch (err) {
      throw new UsageError(err instanceof InvalidOptionError ? `ADDRESS ${a}: ${err.message}` : String(err));
    }
  }
  return list;
}

function readPem(path: string, flag: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    throw new UsageError(`--${flag}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** TLS options from the flags, or undefined for plain TCP / Unix sockets. */
export function tlsOptions(flags: ConnectionFlags): tls.ConnectionOptions | undefined {
  const wanted = flags.tls === true || flags.insecure === true || [flags.ca, flags.cert, flags.key, flags.servername].some((v) => v !== undefined);
  if (!wanted) return undefined;
  if ((flags.cert === undefined) !== (flags.key === undefined)) throw new UsageError('--cert and --key go together (mutual TLS)');
  const options: tls.ConnectionOptions = {};
  if (flags.ca !== undefined) options.ca = readPem(flags.ca, 'ca');
  if (flags.cert !== undefined) options.cert = readPem(flags.cert, 'cert');
  if (flags.key !== undefined) options.key = readPem(flags.key, 'key');
  if (flags.servername !== undefined) options.servername = flags.servername;
  if (flags.insecure === true) options.rejectUnauthorized = false;
  return options;
}

/** The per-call timeout (ms) the flags ask for. */
export function callTimeout(flags: ConnectionFlags): number {
  return duration(flags.timeout, DEFAULT_CLI_TIMEOUT, 'timeout');
}

/**
 * A FailoverPool over ADDRESS with the flags' TLS and timeout, connected
 * (rejects with rpc_unreachable when no address answers). `extra` adds
 * pool options (bench: connections and window).
 */
export async function connect(address: string, flags: ConnectionFlags, extra: FailoverPoolOptions = {}): Promise<FailoverPool> {
  const addresses = addressList(address);
  const timeout = callTimeout(flags);
  const tls = tlsOptions(flags);
  const pool = new FailoverPool(addresses, {
    timeout,
    connectTimeout: timeout,
    handshakeTimeout: timeout,
    // a coarse wheel would round a short --timeout up to a second
    timerResolution: Math.max(10, Math.min(1000, Math.floor(timeout / 4))),
    ...(tls === undefined ? {} : { tls }),
    ...extra,
  });
  try {
    await pool.connect();
  } catch (err) {
    pool.destroy();
    throw err;
  }
  return pool;
}
