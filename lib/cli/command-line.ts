import { parseArgs, type ParseArgsConfig } from 'node:util';

import { UsageError } from './exit-codes.js';

type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

/** Options every command that dials a server takes. */
export const CONNECTION_OPTIONS = {
  timeout: { type: 'string', short: 't' },
  tls: { type: 'boolean' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  servername: { type: 'string' },
  insecure: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpecs;

export const CONNECTION_HELP = `Connection options:
  ADDRESS                 host:port, [v6]:port or unix:/path; several, comma-separated, for failover
  -t, --timeout DURATION  per call (and connect) timeout: 500ms, 10s, 1m; a bare number is ms (default 10s)
      --tls               connect with TLS (implied by --ca, --cert, --key, --servername)
      --ca FILE           trust this CA (PEM) instead of the system's
      --cert FILE         client certificate (PEM), for mutual TLS
      --key FILE          client private key (PEM), for mutual TLS
      --servername NAME   TLS server name (SNI and certificate check)
      --insecure          TLS without checking the server's certificate
  -h, --help              this help`;

export interface Parsed<V> {
  values: V;
  positionals: string[];
}

const NEGATIVE_NUMBER = /^-(\d|\.\d)/;
const HIDE = '\u0000';

/** util.parseArgs, strict, with its errors as UsageErrors naming the command; `V` is what `options` declares. */
export function parse<V>(command: string, args: string[], options: OptionSpecs): Parsed<Partial<V>> {
  // a negative number is a value (`call ADDR Calc.neg -1`), not an option: hidden from parseArgs, then put back
  const hidden = args.map((a) => (NEGATIVE_NUMBER.test(a) ? `${HIDE}${a}` : a));
  try {
    const parsed = parseArgs({ args: hidden, options, allowPositionals: true, strict: true }) as Parsed<Partial<V>>;
    return { values: parsed.values, positionals: parsed.positionals.map((p) => (p.startsWith(HIDE) ? p.slice(HIDE.length) : p)) };
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}`);
  }
}

/** A duration: 250ms, 1.5s, 2m, or a bare number of ms. */
export function duration(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (m === null) throw new UsageError(`--${name}: expected a duration such as 500ms, 10s or 1m, got "${text}"`);
  const n = Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 1);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`--${name}: must be above 0, got "${text}"`);
  return Math.round(n);
}

/** A positive integer option. */
export function count(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${name}: expected a positive integer, got "${text}"`);
  return n;
}

/** `k=v` pairs (--metadata), the value read as JSON when it parses, else as a string. */
export function metadata(pairs: string[] | undefined): Record<string, unknown> | undefined {
  if (pairs === undefined || pairs.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--metadata: expected key=value, got "${pair}"`);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    out[pair.slice(0, eq)] = value;
  }
  return out;
}

/** The positionals a command needs, or a UsageError saying which is missing. */
export function positionals(command: string, given: string[], names: string[], optional = 0): string[] {
  if (given.length < names.length - optional) throw new UsageError(`${command}: missing ${names[given.length]} (see nestjs-occams ${command} --help)`);
  if (given.length > names.length) throw new UsageError(`${command}: unexpected argument "${given[names.length]}" (see nestjs-occams ${command} --help)`);
  return given;
}
