/**
 * Options as users write them: numbers as strings (env, ConfigService) are
 * read as numbers; anything else, and unknown keys, fail with an error
 * naming the option as written; Nest's serializer options are refused
 * with what to use instead.
 */
import 'reflect-metadata';

import { NestFactory } from '@nestjs/core';

import { RetryPolicy } from '../lib/client/retry-policy.js';
import {
  ClientPool,
  ClientStream,
  FailoverPool,
  InvalidOptionError,
  MethodDispatch,
  OccamsClient,
  OccamsModule,
  OccamsServer,
  occamsServerOptionsFrom,
  RpcServer,
  type TcpAddress,
} from '../lib/index.js';
import { FakeClock } from './support/fake-clock.js';
import { TestAppModule } from './support/nest-apps.js';
import { startServer, waitFor } from './support/servers.js';

/** The InvalidOptionError `fn` throws (or rejects with). */
async function optionError(fn: () => unknown): Promise<InvalidOptionError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError);
    return err as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError');
}

describe('unknown option keys are refused by name', () => {
  it('at every entry: OccamsClient, OccamsServer, OccamsModule, the pools, streams and RpcServer', async () => {
    const client = await optionError(() => new OccamsClient({ prot: 7100 } as never));
    expect(client.option).toBe('prot');
    expect(client.code).toBe('rpc_invalid_option');
    expect(client.message).toBe('invalid option prot: not an option of OccamsClient (did you mean port?)');

    expect((await optionError(() => new OccamsServer({ prot: 1 } as never))).message).toContain('not an option of OccamsServer (did you mean port?)');
    expect((await optionError(() => OccamsModule.register([{ name: 'X', timout: 5 } as never]))).option).toBe('timout');
    expect((await optionError(() => new FailoverPool(['127.0.0.1:1'], { retrylimit: 1 } as never))).message).toContain('(did you mean retryLimit?)');
    expect((await optionError(() => new ClientPool('127.0.0.1:1', { conections: 2 } as never))).option).toBe('conections');
    expect((await optionError(() => new ClientPool('127.0.0.1:1', { backoff: { initialMs: 5 } } as never))).option).toBe('initialMs');
    expect((await optionError(() => new RpcServer(new MethodDispatch(), { closewait: 1 } as never))).option).toBe('closewait');
    expect((await optionError(() => ClientStream.connect('127.0.0.1:1', { windowSize: 4 } as never))).message).toBe('invalid option windowSize: not an option of ClientStream');
  });

  it('a layer passes the options of the layers below it', async () => {
    const { server, address } = await startServer({ echo: (v) => v });
    const client = new OccamsClient({ port: address.port, connections: 2, strategy: 'first', maxInFlight: 8, backoff: { initial: 10 }, timeout: 1000 });
    expect(await client.request('echo', 'ok')).toBe('ok');
    await client.close();
    await server.close();
  });

  it("Nest's serializer/deserializer and the ClientsModule shape are refused with what to write instead", async () => {
    const serializer = await optionError(() => new OccamsClient({ serializer: { serialize: (v: unknown) => v } } as never));
    expect(serializer.option).toBe('serializer');
    expect(serializer.message).toContain('codec');
    expect((await optionError(() => new OccamsServer({ deserializer: { deserialize: (v: unknown) => v } } as never))).message).toContain('codec');
    const shape = await optionError(() => OccamsModule.register([{ name: 'X', transport: 0, options: { port: 1 } } as never]));
    expect(shape.option).toBe('transport');
    expect(shape.message).toContain('{ name, host, port }');
  });
});

describe('booleans as strings', () => {
  it("'true' / 'false' in any case are read as booleans: fastPath, extensions, idempotent", async () => {
    const plain = new OccamsServer({ port: 0, fastPath: 'FALSE' } as never);
    const app = await NestFactory.createMicroservice(TestAppModule, { strategy: plain, logger: false });
    await app.listen();
    expect(plain.isFastPath('echo')).toBe(false); // 'false' was truthy before: the shortcut stayed on
    const fast = new OccamsServer({ port: 0, fastPath: ' true ' } as never);
    const app2 = await NestFactory.createMicroservice(TestAppModule, { strategy: fast, logger: false });
    await app2.listen();
    expect(fast.isFastPath('echo')).toBe(true);
    const port = (plain.address as TcpAddress).port;
    const v1 = await ClientStream.connect({ host: '127.0.0.1', port }, { extensions: 'false' } as never);
    expect(v1.features).toBe(0);
    expect(await v1.request('echo', 'plain v1')).toBe('plain v1');
    v1.destroy();
    const { server, url } = await startServer({ echo: (m: unknown) => m }, { extensions: 'false' } as never);
    const toV1Server = await ClientStream.connect(url);
    expect(toV1Server.features).toBe(0);
    toV1Server.destroy();
    await server.destroy();
    expect(new RetryPolicy(2, 'True' as never).idempotent('any', undefined)).toBe(true);
    expect(new RetryPolicy(2, 'false' as never).idempotent('any', undefined)).toBe(false);
    expect(new RetryPolicy(2, ['a']).idempotent('a', undefined)).toBe(true);
    await app.close();
    await app2.close();
  });

  it('anything else is refused naming the option; a lone string is not read as a list of its characters', async () => {
    expect((await optionError(() => new OccamsServer({ fastPath: 'yes' } as never))).option).toBe('fastPath');
    const ext = await optionError(() => ClientStream.connect({ host: '127.0.0.1', port: 1 }, { extensions: 1 } as never));
    expect(ext.option).toBe('extensions');
    expect(ext.message).toContain('expected true or false');
    expect((await optionError(() => new RpcServer(new MethodDispatch({}), { extensions: 'on' } as never))).option).toBe('extensions');
    const lone = await optionError(() => new OccamsClient({ port: 1, idempotent: 'echo' } as never));
    expect(lone.option).toBe('idempotent');
    expect((await optionError(() => new FailoverPool(['127.0.0.1:1'], { idempotent: 'sometimes' } as never))).option).toBe('idempotent');
  });
});

describe('numbers as strings', () => {
  it('ports, timeouts and sizes given as digit strings work end to end', async () => {
    const strategy = new OccamsServer({ port: '0', maxFrameSize: '1048576', closeWait: '1000' } as never);
    const app = await NestFactory.createMicroservice(TestAppModule, { strategy, logger: false });
    await app.listen();
    const port = String((strategy.address as TcpAddress).port);
    const client = new OccamsClient({ port, timeout: '2000', maxInFlight: '4', connections: '2', retryLimit: '1' } as never);
    expect(await client.request('echo', 'strings')).toBe('strings');
    await client.close();
    await app.close();
  });

  it('what is not a number is refused naming the option the user wrote', async () => {
    const port = await optionError(() => new OccamsClient({ port: 'seventy' }));
    expect(port.option).toBe('port');
    expect(port.message).toContain('"seventy"');
    expect((await optionError(() => new OccamsClient({ port: 70000 }))).option).toBe('port');
    expect((await optionError(() => new OccamsClient({ port: 1, timeout: 'soon' } as never))).option).toBe('timeout');
    expect((await optionError(() => new OccamsClient({ port: 1, maxInFlight: '-1' } as never))).option).toBe('maxInFlight');
    expect((await optionError(() => new OccamsClient({ addresses: ['127.0.0.1:x'] }))).option).toBe('addresses');
  });

  it('a bad server port or host is refused when the strategy is constructed, not at listen()', () => {
    const refused = (fn: () => unknown): InvalidOptionError => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidOptionError);
        return err as InvalidOptionError;
      }
      throw new Error('expected the constructor to throw');
    };
    expect(refused(() => new OccamsServer({ port: 70000 })).option).toBe('port');
    expect(refused(() => new OccamsServer({ port: 'seventy' })).message).toContain('"seventy"');
    expect(refused(() => new OccamsServer({ host: '127.0.0.1:7100' })).option).toBe('host');
  });

  it('a host with a port in it is refused, naming `port`, not sent to DNS', () => {
    for (const make of [(host: string) => new OccamsClient({ host }), (host: string) => new OccamsServer({ host })]) {
      let err: InvalidOptionError | undefined;
      try {
        make('127.0.0.1:7100');
      } catch (e) {
        err = e as InvalidOptionError;
      }
      expect(err).toBeInstanceOf(InvalidOptionError);
      expect(err!.option).toBe('host');
      expect(err!.message).toContain("has a port in it: give it as `port`, { host: '127.0.0.1', port: 7100 }");
      expect(() => make('tcp://example.com')).toThrow(/a URL or a path goes in `address` or `path`/);
    }
    // IPv6 literals and plain names are hosts
    expect(() => new OccamsServer({ host: '::1', port: 0 })).not.toThrow();
    expect(() => new OccamsServer({ host: 'localhost', port: 0 })).not.toThrow();
  });

  it('occamsServerOptionsFrom reads env-style strings and names the bad variable', async () => {
    const env: Record<string, string> = { OCCAMS_PORT: '0', OCCAMS_HOST: '127.0.0.1', OCCAMS_CLOSE_WAIT: '500' };
    const options = occamsServerOptionsFrom((k) => env[k]);
    expect(options).toEqual({ host: '127.0.0.1', port: 0, closeWait: 500 });
    const err = await optionError(() => occamsServerOptionsFrom((k) => (k === 'OCCAMS_PORT' ? 'x' : undefined)));
    expect(err.option).toBe('OCCAMS_PORT');
  });
});

describe('one meaning per name', () => {
  it("the server's TLS handshake bound is tlsHandshakeTimeout; its old name handshakeTimeout still works, with a warning, and not beside the new one", async () => {
    const { MemoryLogger } = await import('./support/servers.js');
    const quiet = new MemoryLogger();
    const renamed = new RpcServer(new MethodDispatch({}), { tlsHandshakeTimeout: 700, logger: quiet });
    expect(renamed.options.tlsHandshakeTimeout).toBe(700);
    expect(quiet.lines).toEqual([]);

    const logger = new MemoryLogger();
    const old = new RpcServer(new MethodDispatch({}), { handshakeTimeout: 800, logger });
    expect(old.options.tlsHandshakeTimeout).toBe(800);
    expect(logger.lines).toEqual([expect.stringMatching(/^warn: .*handshakeTimeout is deprecated: it is now tlsHandshakeTimeout/)]);

    const both = await optionError(() => new RpcServer(new MethodDispatch({}), { handshakeTimeout: 800, tlsHandshakeTimeout: 700, logger }));
    expect(both.option).toBe('handshakeTimeout');
    expect(both.message).toMatch(/old name of tlsHandshakeTimeout/);
  });

  it("a pool's bound on its extra connections is extraIdleTimeout; its old name idleTimeout (the server's) still works, warned once per process, and not beside the new one", async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const deprecations = () => warn.mock.calls.filter(([, o]) => (o as { code?: string } | undefined)?.code === 'OCCAMS_POOL_IDLE_TIMEOUT').length;
    const s = await startServer({ slow: () => new Promise((r) => setTimeout(() => r('done'), 50)) });
    try {
      for (const name of ['extraIdleTimeout', 'idleTimeout'] as const) {
        const clock = new FakeClock();
        const pool = new ClientPool(s.url, { clock, pingInterval: 0, connections: 1, maxConnections: 2, maxInFlight: 1, [name]: 5_000 });
        await pool.connect();
        const calls = [pool.request('slow', null), pool.request('slow', null)];
        await waitFor(() => pool.stats.connections === 2, 3000);
        expect(await Promise.all(calls)).toEqual(['done', 'done']);
        clock.advance(4_000);
        expect(pool.stats.connections).toBe(2); // not idle for long enough
        clock.advance(2_000);
        expect(pool.stats.connections).toBe(1); // the value given under either name, not the default 120 s
        await pool.close();
        expect(deprecations()).toBe(name === 'idleTimeout' ? 1 : 0);
      }
      // a FailoverPool makes a pool per address: the old name is said once per process, not per pool
      const failover = new FailoverPool([s.url, s.url], { idleTimeout: 1_000 });
      failover.destroy();
      expect(deprecations()).toBe(1);
      expect(warn.mock.calls.find(([, o]) => (o as { code?: string } | undefined)?.code === 'OCCAMS_POOL_IDLE_TIMEOUT')?.[0]).toMatch(
        /idleTimeout is deprecated: it is now extraIdleTimeout/,
      );

      const both = await optionError(() => new ClientPool(s.url, { idleTimeout: 1_000, extraIdleTimeout: 2_000 }));
      expect(both.option).toBe('idleTimeout');
      expect(both.message).toMatch(/old name of extraIdleTimeout/);
      expect((await optionError(() => new OccamsClient({ port: s.address.port, idleTimeout: 1, extraIdleTimeout: 1 }))).option).toBe('idleTimeout');
    } finally {
      warn.mockRestore();
      await s.server.destroy();
    }
  });

  it("idempotent takes one type everywhere a client takes it (IdempotentOption): OccamsClient's `true` makes every pattern retriable", async () => {
    const hung = await startServer({ op: () => new Promise(() => {}) });
    const answers = await startServer({ op: () => 'b' });
    const client = new OccamsClient({ addresses: [hung.url, answers.url], strategy: 'first', idempotent: true, timerResolution: 50 });
    try {
      // times out on the first server, retried on the second: `true` means every pattern
      expect(await client.request('op', 1, { timeout: 150 })).toBe('b');
    } finally {
      await client.close();
      await Promise.all([hung.server.destroy(), answers.server.destroy()]);
    }
    await new OccamsClient({ port: 1, idempotent: 'true' } as never).close(); // from config, as the pools take it
  });
});
