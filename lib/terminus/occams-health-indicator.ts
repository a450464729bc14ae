import { Injectable } from '@nestjs/common';
import { type HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';

import { ClientPool, ClientStream, FailoverPool, type PoolStats } from '../client/index.js';
import { positiveInt, systemClock, withTimeout } from '../core/index.js';
import { InvalidOptionError, TimeoutError } from '../errors.js';
import { OccamsClient } from '../nest/index.js';
import { type AddressLike, formatAddress, parseAddress } from '../transport/index.js';

/** ms a check may take, by default (as Terminus' MicroserviceHealthIndicator). */
export const DEFAULT_HEALTH_TIMEOUT = 1_000;

export interface OccamsPingCheckOptions {
  /**
   * The client to check: its own connections are pinged (no new ones,
   * unless a pool has none). An OccamsClient, or a stream-layer pool.
   */
  client?: OccamsClient | FailoverPool | ClientPool;
  /** Or an address to check (`host:port`, `{ host, port }`, `unix:/path`): a connection is opened, pinged and closed. */
  address?: AddressLike;
  /** ms the whole check may take (connecting included); default 1000 */
  timeout?: number;
}

/** What the check found for one server. */
export interface OccamsServerHealth {
  address: string;
  /** the PING's round trip, ms, when it was answered */
  pingMs?: number;
  /** why it was not (`code: message`) */
  error?: string;
  /** the pool's state and stats after the ping (client checks) */
  pool?: PoolStats;
}

/**
 * A Terminus health indicator for occams servers, as
 * `MicroserviceHealthIndicator` is for Nest's transports, but by a real
 * PING (an occams frame every server answers, v1 peers included) within a
 * timeout, on the client's own connections:
 *
 *   @Get('health') @HealthCheck()
 *   check() {
 *     return this.health.check([() => this.occams.pingCheck('calculator', { client: this.calc })]);
 *   }
 *
 * The result names every server with its round trip or its error and its
 * pool's state and stats. Status: `up` when every server answered,
 * `degraded` when some did (a client with several addresses still works),
 * `down` when none did.
 */
@Injectable()
export class OccamsHealthIndicator {
  constructor(private readonly health: HealthIndicatorService) {}

  async pingCheck<const Key extends string>(key: Key, options: OccamsPingCheckOptions): Promise<HealthIndicatorResult<Key>> {
    const timeout = positiveInt(options.timeout, DEFAULT_HEALTH_TIMEOUT, 'timeout');
    const session = this.health.check(key);
    const started = performance.now();
    let servers: OccamsServerHealth[];
    if (options.client !== undefined) servers = await checkClient(options.client, timeout);
    else if (options.address !== undefined) servers = [await checkAddress(options.address, timeout)];
    else throw new InvalidOptionError('client', 'pingCheck needs a client or an address');
    const responseTime = Math.round(performance.now() - started);
    const answered = servers.filter((s) => s.pingMs !== undefined).length;
    const details = { servers, responseTime };
    if (answered === servers.length && answered > 0) return session.up(details);
    if (answered > 0) return session.degraded(details);
    const message = servers.length === 0 ? 'no server address' : servers.map((s) => `${s.address}: ${s.error}`).join('; ');
    return session.down({ message, ...details });
  }
}

async function checkClient(client: OccamsClient | FailoverPool | ClientPool, timeout: number): Promise<OccamsServerHealth[]> {
  if (client instanceof ClientPool) return [await checkPool(client, timeout)];
  const failover = client instanceof OccamsClient ? client.unwrap<FailoverPool>() : client;
  if (!(failover instanceof FailoverPool)) throw new InvalidOptionError('client', 'expected an OccamsClient, a FailoverPool or a ClientPool');
  if (failover.members.length === 0) {
    // host names not looked up yet
    const lookup = withTimeout(failover.connect(), timeout, systemClock, () => new TimeoutError(`no server found within ${timeout} ms`));
    const err = await lookup.then(
      () => undefined,
      (e: Error) => e,
    );
    if (failover.members.length === 0) return [{ address: 'unresolved', error: describe(err) }];
  }
  return Promise.all(failover.members.map((pool) => checkPool(pool, timeout)));
}

async function checkPool(pool: ClientPool, timeout: number): Promise<OccamsServerHealth> {
  const address = formatAddress(pool.address);
  try {
    const pingMs = await pool.ping(timeout);
    return { address, pingMs, pool: pool.stats };
  } catch (err) {
    return { address, error: describe(err), pool: pool.stats };
  }
}

/** A connection of its own, pinged and closed. */
async function checkAddress(where: AddressLike, timeout: number): Promise<OccamsServerHealth> {
  const address = parseAddress(where, 'address');
  const text = formatAddress(address);
  const until = performance.now() + timeout;
  const connecting = ClientStream.connect(address, { connectTimeout: timeout, handshakeTimeout: timeout, timeout, pingInterval: 60_000 });
  let stream: ClientStream | undefined;
  try {
    stream = await withTimeout(connecting, timeout, systemClock, () => new TimeoutError(`no connection within ${timeout} ms`));
    const pingMs = await stream.ping(Math.max(1, Math.round(until - performance.now())));
    return { address: text, pingMs };
  } catch (err) {
    connecting.then(
      (s) => s.destroy(),
      () => {},
    ); // one that connects after the timeout
    return { address: text, error: describe(err) };
  } finally {
    stream?.destroy();
  }
}

function describe(err: unknown): string {
  if (err === undefined) return 'unknown error';
  const e = err as { code?: unknown; message?: unknown };
  return typeof e.code === 'string' ? `${e.code}: ${String(e.message)}` : String(e.message ?? err);
}
