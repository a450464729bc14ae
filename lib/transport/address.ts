import { isIP } from 'node:net';

import { InvalidOptionError } from '../errors.js';

/** Where a server listens or a client connects. */
export type Address = TcpAddress | UnixAddress;
export interface TcpAddress {
  host: string;
  port: number;
}
export interface UnixAddress {
  path: string;
}

/** What users may write: `host:port`, `tcp://host:port`, `unix:/path`, `/path`, or an object. */
export type AddressLike = string | TcpAddress | UnixAddress;

export function isUnixAddress(a: Address): a is UnixAddress {
  return (a as UnixAddress).path !== undefined;
}

export function parseAddress(input: AddressLike, option = 'address'): Address {
  if (typeof input !== 'string') {
    if (input && typeof (input as UnixAddress).path === 'string') return { path: (input as UnixAddress).path };
    const t = input as TcpAddress;
    if (t && typeof t.host === 'string' && isPort(t.port)) return { host: t.host, port: t.port };
    throw new InvalidOptionError(option, `expected {host, port} or {path}, got ${JSON.stringify(input)}`);
  }
  let s = input.trim();
  if (s.startsWith('unix:')) return { path: s.slice(s.startsWith('unix://') ? 7 : 5) };
  if (s.startsWith('/') || s.startsWith('./')) return { path: s };
  s = s.replace(/^(tcp|tls):\/\//, '');
  const colon = s.lastIndexOf(':');
  if (colon <= 0) throw new InvalidOptionError(option, `expected host:port, got "${input}"`);
  let host = s.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = Number(s.slice(colon + 1));
  if (!isPort(port)) throw new InvalidOptionError(option, `bad port in "${input}"`);
  return { host, port };
}

export function formatAddress(a: Address): string {
  if (isUnixAddress(a)) return `unix:${a.path}`;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

function isPort(p: unknown): p is number {
  return typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= 65535;
}

/** The Nest-style ways of saying where: `address`, else `path`, else `host`/`port`. */
export interface AddressParts {
  host?: string;
  port?: number | string;
  path?: string;
  address?: AddressLike;
}

/** One address from the Nest-style parts; a port may be a string of digits (env, ConfigService). */
export function addressFromParts(parts: AddressParts, defaultHost: string, defaultPort: number): AddressLike {
  if (parts.address !== undefined) return parts.address;
  if (parts.path !== undefined) return { path: parts.path };
  const port = parts.port === undefined ? defaultPort : typeof parts.port === 'string' && /^\d+$/.test(parts.port.trim()) ? Number(parts.port) : parts.port;
  if (!isPort(port)) throw new InvalidOptionError('port', `expected a port number 0-65535, got ${JSON.stringify(parts.port)}`);
  if (parts.host !== undefined) checkHost(parts.host);
  return { host: parts.host ?? defaultHost, port };
}

/**
 * A `host` option is a host name or an IP address, nothing more: a port or
 * a scheme in it would go to DNS as part of the name.
 */
function checkHost(host: unknown): void {
  if (typeof host !== 'string' || host.trim() === '') throw new InvalidOptionError('host', `expected a host name or IP address, got ${JSON.stringify(host)}`);
  if (!host.includes(':') && !host.includes('/')) return;
  if (isIP(host) !== 0) return; // IPv6
  const withPort = /^\[?([^\][/]*?)\]?:(\d+)$/.exec(host);
  if (withPort !== null) {
    const [, name, port] = withPort;
    throw new InvalidOptionError('host', `"${host}" has a port in it: give it as \`port\`, { host: '${name}', port: ${port} } (or as one \`address: '${host}'\`)`);
  }
  throw new InvalidOptionError('host', `expected a host name or IP address, got "${host}" (a URL or a path goes in \`address\` or \`path\`)`);
}
