import { type Clock, withTimeout } from '../core/clock.js';
import { ClosedError, TimeoutError } from '../errors.js';
import type { Address } from '../transport/address.js';
import { formatAddress } from '../transport/address.js';
import type { ClientStream } from './client-stream.js';

/** What a PING needs of its pool (ClientPool): a port, so that the pool and this file do not import each other. */
export interface PingablePool {
  readonly ending: boolean;
  readonly address: Address;
  readonly connections: readonly ClientStream[];
  /** resolves once a connection is open */
  connect(): Promise<void>;
}

/**
 * A real PING to a pool's address within `timeout` ms in all: on a ready
 * connection that is not draining, after connecting first when there is
 * none. Resolves with the round trip of the PING alone, in ms; rejects
 * with the connect error (`rpc_unreachable`), `rpc_timeout` or `rpc_closed`.
 */
export async function pingPool(pool: PingablePool, timeout: number, clock: Clock): Promise<number> {
  if (pool.ending) throw new ClosedError('pool is closed');
  const until = clock.now() + timeout;
  let stream = readyStream(pool);
  if (stream === undefined) {
    await withTimeout(pool.connect(), timeout, clock, () => new TimeoutError(`no connection to ${formatAddress(pool.address)} within ${timeout} ms`));
    stream = readyStream(pool);
    if (stream === undefined) throw new ClosedError(`no open connection to ${formatAddress(pool.address)}`);
  }
  return stream.ping(Math.max(1, until - clock.now()));
}

function readyStream(pool: PingablePool): ClientStream | undefined {
  for (const s of pool.connections) if (s.state === 'ready' && !s.draining) return s;
  return undefined;
}
