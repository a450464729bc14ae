/**
 * The typed API-call layer over real sockets: a service definition served
 * by a Nest controller (@OccamsService) or a MethodDispatch (addService),
 * called through a typed OccamsClient, an injected one, the stream layer's
 * serviceClient, and a raw occams v1 client.
 */
import 'reflect-metadata';

import { type INestMicroservice, Injectable } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { Packr } from 'msgpackr';
import { firstValueFrom, lastValueFrom, type Observable, toArray } from 'rxjs';

import type { OccamsError as OccamsErrorType } from '../lib/index.js';
import {
  ClientStream,
  defineService,
  FailoverPool,
  InjectOccamsService,
  InternalError,
  InvalidOptionError,
  method,
  MethodDispatch,
  MethodNotFoundError,
  OccamsClient,
  OccamsError,
  OccamsModule,
  OccamsServer,
  OccamsService,
  type OccamsServiceClient,
  occamsServiceToken,
  RemoteErrnoError,
  RemoteError,
  RpcServer,
  serviceClient,
  type ServiceHandlers,
  stream,
  type TcpAddress,
} from '../lib/index.js';
import { v1Exchange, v1Request } from './support/raw-v1.js';
import { MemoryLogger } from './support/servers.js';
import { EDOM, OverQuota, Refusal, Vault, VaultErrno, VaultModule } from './support/vault-service.js';

const msgpack = new Packr({ useRecords: false });

/** The error an Observable or a Promise fails with (fails the test if it succeeds). */
async function failure(call: Observable<unknown> | Promise<unknown>): Promise<unknown> {
  const p = call instanceof Promise ? call : firstValueFrom(call);
  return p.then(
    (v) => {
      throw new Error(`expected a failure, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
}

/** Collects an async iterator (bounded: at most 100 items), and the error that ended it, if any. */
async function drain<T>(it: AsyncIterable<T>): Promise<{ items: T[]; error?: unknown }> {
  const items: T[] = [];
  try {
    for await (const v of it) {
      items.push(v);
      if (items.length > 100) throw new Error('too many items');
    }
    return { items };
  } catch (error) {
    return { items, error };
  }
}

describe('a typed service: @OccamsService controller, typed OccamsClient', () => {
  let app: INestMicroservice;
  let port: number;
  let client: OccamsClient;
  let vault: OccamsServiceClient<typeof Vault>;
  beforeAll(async () => {
    const strategy = new OccamsServer({ port: 0 });
    app = await NestFactory.createMicroservice(VaultModule, { strategy, logger: false });
    await app.listen();
    port = (strategy.address as TcpAddress).port;
    client = new OccamsClient({ port });
    vault = client.service(Vault);
  });
  afterAll(async () => {
    await client?.close();
    await app?.close();
  });

  it('answers a value as an Observable and as a Promise, under the pattern Service.method', async () => {
    expect(await firstValueFrom(vault.add([2, 3]))).toBe(5);
    expect(await vault.add.request([20, 22], { timeout: 2000 })).toBe(42);
    expect(await vault.echo.request('hi')).toEqual({ echoed: 'hi', pattern: 'Vault.echo', intercepted: true }); // @Ctx and an interceptor
    expect(await vault.version.request()).toBe('v1 (argument null)'); // no argument: nil on the wire, under its own wire name
    expect(Vault.patterns.version).toBe('Vault.get_version');
    expect(client.service(Vault)).toBe(vault);
  });

  it('streams items as an Observable and as an async iterator, from Observable and async-generator handlers', async () => {
    expect(await lastValueFrom(vault.ticks(4).pipe(toArray()))).toEqual([0, 1, 2, 3]);
    expect(await lastValueFrom(vault.countdown(3).pipe(toArray()))).toEqual([1, 2, 3]);
    expect(await drain(vault.countdown.stream(2, { window: 1 }))).toEqual({ items: [1, 2] });
    expect(await drain(vault.ticks.stream(3))).toEqual({ items: [0, 1, 2] });
  });

  it('raises a declared errno-form error as its class: VaultErrno with its errno and message, the remote error as cause', async () => {
    for (const call of [vault.divide([1, 0]), vault.divide.request([1, 0])]) {
      const err = (await failure(call)) as VaultErrno;
      expect(err).toBeInstanceOf(VaultErrno);
      expect(err).not.toBeInstanceOf(OccamsError);
      expect([err.errno, err.message]).toEqual([EDOM, 'cannot divide by zero']);
      expect(err.cause).toBeInstanceOf(RemoteErrnoError);
    }
    expect(await vault.divide.request([1, 4])).toBe(0.25);
  });

  it('raises a declared message-form error (thrown by an async handler) as its class', async () => {
    const err = (await failure(vault.refuse.request('no'))) as Refusal;
    expect(err).toBeInstanceOf(Refusal);
    expect(err.message).toBe('refused: no');
    expect(err.cause).toBeInstanceOf(RemoteError);
    expect(await vault.refuse.request('please')).toBe('granted');
  });

  it("raises a declared value-form error (from a handler's Observable) as its class, with its fields", async () => {
    const err = (await failure(vault.reserve(11))) as OverQuota;
    expect(err).toBeInstanceOf(OverQuota);
    expect([err.limit, err.used, err.message]).toEqual([10, 11, 'over quota: 11 of 10']);
    expect(await vault.reserve.request(5)).toBe(5);
  });

  it('raises a declared error that ends a stream after its items, in both stream forms', async () => {
    const seen: number[] = [];
    const err = await new Promise((resolve, reject) => vault.countdown(5).subscribe({ next: (v) => seen.push(v), error: resolve, complete: () => reject(new Error('completed')) }));
    expect(seen).toEqual([1, 2, 3]);
    expect(err).toBeInstanceOf(OverQuota);
    const pulled = await drain(vault.countdown.stream(4));
    expect(pulled.items).toEqual([1, 2, 3]);
    expect(pulled.error).toBeInstanceOf(OverQuota);
    expect((pulled.error as OverQuota).used).toBe(4);
  });

  it("lets the method's own exception filter take a declared error first", async () => {
    const err = (await failure(vault.audited.request('late'))) as Refusal;
    expect(err).toBeInstanceOf(Refusal);
    expect(err.message).toBe('audited: late');
  });

  it('keeps every other failure an OccamsError: guards, pipes, crashes, a toWire() its form cannot carry, missing methods', async () => {
    expect(await vault.guarded.request({ token: 'open' })).toBe('inside');
    const denied = await failure(vault.guarded.request({ token: 'nope' }));
    expect(denied).toBeInstanceOf(RemoteError);
    expect((denied as RemoteError).message).toBe('Forbidden resource');
    const piped = await failure(vault.add.request(['x', 1] as unknown as [number, number]));
    expect((piped as RemoteError).message).toBe('two numbers expected');
    const crash = (await failure(vault.crash.request())) as OccamsError;
    expect(crash).toBeInstanceOf(InternalError);
    expect(crash.message).not.toContain('secret');
    expect(await failure(vault.badErrno.request())).toBeInstanceOf(InternalError);

    // a client whose definition is out of step with the server's
    const Skewed = defineService('Vault', {
      refuse: method<string, string, VaultErrno>({ errors: VaultErrno }), // the server sends a message, not an errno
      missing: method<void, void>(),
    });
    const skewed = client.service(Skewed);
    const other = await failure(skewed.refuse.request('no'));
    expect(other).toBeInstanceOf(RemoteError);
    expect((other as RemoteError).message).toBe('refused: no');
    expect(await failure(skewed.missing.request())).toBeInstanceOf(MethodNotFoundError);
  });
});

describe('typed clients injected through OccamsModule', () => {
  @Injectable()
  class Teller {
    constructor(@InjectOccamsService('VAULT', Vault) readonly vault: OccamsServiceClient<typeof Vault>) {}
  }

  it('register() and registerAsync() provide the typed client of each listed service', async () => {
    const strategy = new OccamsServer({ port: 0 });
    const app = await NestFactory.createMicroservice(VaultModule, { strategy, logger: false });
    await app.listen();
    const port = (strategy.address as TcpAddress).port;
    try {
      for (const imports of [
        OccamsModule.register([{ name: 'VAULT', port, services: [Vault] }]),
        OccamsModule.registerAsync([{ name: 'VAULT', services: [Vault], useFactory: () => ({ port: String(port) }) }]),
      ]) {
        const moduleRef = await Test.createTestingModule({ imports: [imports], providers: [Teller] }).compile();
        await moduleRef.init();
        const { vault } = moduleRef.get(Teller);
        expect(moduleRef.get(occamsServiceToken('VAULT', Vault))).toBe(vault);
        expect(await vault.add.request([1, 2])).toBe(3);
        expect(await failure(vault.divide([1, 0]))).toBeInstanceOf(VaultErrno);
        await moduleRef.close();
      }
    } finally {
      await app.close();
    }
  });
});

describe('the stream layer: MethodDispatch.addService and serviceClient', () => {
  const handlers: ServiceHandlers<typeof Vault> = {
    add: ([a, b]) => a + b,
    echo: (value, req) => ({ echoed: value, pattern: String(req.action) }),
    divide: ([a, b]) => {
      if (b === 0) throw new VaultErrno(EDOM, 'cannot divide by zero');
      return a / b;
    },
    refuse: async (why) => {
      throw new Refusal(`refused: ${why}`);
    },
    reserve: (n) => {
      throw new OverQuota(10, n);
    },
    audited: (why) => why,
    async *countdown(n) {
      yield 1;
      throw new OverQuota(1, n);
    },
    async *ticks(n) {
      for (let i = 0; i < n; i++) yield i;
    },
    version: () => 'v1',
    guarded: () => 'inside',
    crash: () => {
      throw new Error('secret detail');
    },
    badErrno: () => {
      throw new VaultErrno(2 ** 32);
    },
  };
  let server: RpcServer;
  let logger: MemoryLogger;
  let address: TcpAddress;
  beforeAll(async () => {
    logger = new MemoryLogger();
    server = new RpcServer(new MethodDispatch({}, logger).addService(Vault, handlers), { logger });
    address = (await server.listen('127.0.0.1:0')) as TcpAddress;
  });
  afterAll(() => server.close());

  it('calls values and streams, and raises each declared error form as its class', async () => {
    const stream = await ClientStream.connect(address);
    try {
      const vault = serviceClient(stream, Vault);
      expect(await vault.add([2, 3])).toBe(5);
      expect(await vault.echo('x')).toEqual({ echoed: 'x', pattern: 'Vault.echo' });
      expect(await vault.version()).toBe('v1');
      expect(await drain(vault.ticks(3))).toEqual({ items: [0, 1, 2] });
      const errno = (await failure(vault.divide([1, 0]))) as VaultErrno;
      expect([errno instanceof VaultErrno, errno.errno, errno.message]).toEqual([true, EDOM, 'cannot divide by zero']);
      const refusal = await failure(vault.refuse('no'));
      expect([refusal instanceof Refusal, (refusal as Refusal).message]).toEqual([true, 'refused: no']);
      const quota = (await failure(vault.reserve(12))) as OverQuota;
      expect([quota instanceof OverQuota, quota.limit, quota.used]).toEqual([true, 10, 12]);
      const counted = await drain(vault.countdown(7));
      expect(counted.items).toEqual([1]);
      expect(counted.error).toBeInstanceOf(OverQuota);
      expect(await failure(vault.crash())).toBeInstanceOf(InternalError);
      expect(await failure(vault.badErrno())).toBeInstanceOf(InternalError);
      expect(logger.lines.some((l) => l.includes('VaultErrno.toWire() must give an integer'))).toBe(true);
    } finally {
      await stream.close();
    }
  });

  it('decodes the plain v1 forms too (no extensions: errno alone, a value as flag-2 codec bytes)', async () => {
    const stream = await ClientStream.connect(address, { extensions: false });
    try {
      const vault = serviceClient(stream, Vault);
      const errno = (await failure(vault.divide([1, 0]))) as VaultErrno;
      expect([errno instanceof VaultErrno, errno.errno, errno.message]).toEqual([true, EDOM, `errno ${EDOM}`]);
      const quota = (await failure(vault.reserve(12))) as OverQuota;
      expect([quota instanceof OverQuota, quota.limit, quota.used]).toEqual([true, 10, 12]);
      expect(await failure(vault.refuse('no'))).toBeInstanceOf(Refusal);
    } finally {
      await stream.close();
    }
  });
});

describe('a raw occams v1 client calling the typed Nest service', () => {
  it('gets values and each declared error in its v1 form, as a Rust client decoding its own error types would', async () => {
    const strategy = new OccamsServer({ port: 0 });
    const app = await NestFactory.createMicroservice(VaultModule, { strategy, logger: false });
    await app.listen();
    try {
      const frames = await v1Exchange(
        (strategy.address as TcpAddress).port,
        [
          v1Request(1, 'Vault.add', [2, 3]),
          v1Request(2, 'Vault.divide', [1, 0]),
          v1Request(3, 'Vault.refuse', 'no'),
          v1Request(4, 'Vault.reserve', 11),
          v1Request(5, 'Vault.countdown', 5),
          v1Request(6, 'Vault.countdown', 2),
          v1Request(7, 'Vault.get_version', null),
          v1Request(8, 'Vault.nope', 1),
        ],
        8,
      );
      const read = (f: Buffer) => {
        const flag = f[3]!;
        const msgLen = f.readUInt32LE(4);
        const body = f.subarray(20);
        if (flag === 0) return { flag, value: msgLen === 0 ? undefined : msgpack.unpack(body) };
        if (flag === 1) return { flag, errno: msgLen, bodyLength: body.length };
        return { flag, bytes: body };
      };
      const [add, divide, refuse, reserve, countdownFailed, countdown, version, nope] = frames.map(read);
      expect(add).toEqual({ flag: 0, value: 5 });
      expect(divide).toEqual({ flag: 1, errno: EDOM, bodyLength: 0 }); // the errno alone
      expect(refuse).toEqual({ flag: 2, bytes: Buffer.from('refused: no') }); // UTF-8
      expect(reserve!.flag).toBe(2);
      expect(msgpack.unpack(reserve!.bytes!)).toEqual({ limit: 10, used: 11 }); // the value, encoded with the codec
      expect(countdownFailed!.flag).toBe(2);
      expect(msgpack.unpack(countdownFailed!.bytes!)).toEqual({ limit: 3, used: 5 });
      expect(countdown).toEqual({ flag: 0, value: 2 }); // a stream's last value
      expect(version).toEqual({ flag: 0, value: 'v1 (argument null)' });
      expect(nope).toEqual({ flag: 2, bytes: Buffer.from('rpc_method_notfound') });
    } finally {
      await app.close();
    }
  });
});

describe("a definition's idempotent flag decides retries after a timeout", () => {
  const Op = defineService('Op', {
    idem: method<number, string>({ idempotent: true }),
    once: method<number, string>(),
  });

  it('is retried on the next server when the definition says so, unless the call says otherwise (Nest client and stream layer)', async () => {
    const runs = { a: 0, b: 0 };
    const start = async (name: 'a' | 'b') => {
      const run = () => (runs[name]++, name === 'a' ? new Promise<string>(() => {}) : name); // a hangs, b answers
      const server = new RpcServer(new MethodDispatch({}, new MemoryLogger()).addService(Op, { idem: run, once: run }), { logger: new MemoryLogger() });
      return { server, port: ((await server.listen()) as TcpAddress).port };
    };
    const [a, b] = [await start('a'), await start('b')];
    const addresses = [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`];
    const client = new OccamsClient({ addresses, timerResolution: 50, strategy: 'first' }); // a first
    const pool = new FailoverPool(addresses, { timerResolution: 50, strategy: 'first' });
    try {
      const op = client.service(Op);
      expect(await op.idem.request(1, { timeout: 150 })).toBe('b');
      expect(await firstValueFrom(op.idem(1, { timeout: 150 }))).toBe('b');
      const before = runs.b;
      expect(((await failure(op.once.request(1, { timeout: 150 }))) as OccamsErrorType).code).toBe('rpc_timeout');
      expect(((await failure(op.idem.request(1, { timeout: 150, idempotent: false }))) as OccamsErrorType).code).toBe('rpc_timeout');
      expect(runs.b).toBe(before);
      expect(await serviceClient(pool, Op).idem(1, { timeout: 150 })).toBe('b');
    } finally {
      await client.close();
      await pool.close();
      await Promise.all([a.server.destroy(), b.server.destroy()]);
    }
  });
});

describe('definitions are checked where they are written', () => {
  class NoFromWire extends Error {
    static readonly wire = 'errno';
    toWire(): number {
      return 1;
    }
  }

  it('refuses bad names, unknown options, non-error classes and clashing wire names, naming them', async () => {
    const err = async (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidOptionError);
        return (e as InvalidOptionError).message;
      }
      throw new Error('expected an InvalidOptionError');
    };
    expect(await err(() => defineService('Bad.Name', {}))).toContain("a service name is a non-empty string without '.'");
    expect(await err(() => method({ idempotnet: true } as never))).toBe('invalid option idempotnet: not an option of method() (did you mean idempotent?)');
    expect(await err(() => method({ errors: NoFromWire } as never))).toBe('invalid option errors: NoFromWire needs a static fromWire()');
    expect(await err(() => stream({ errors: Error } as never))).toContain("Error needs a static wire of 'errno', 'message', 'value'");
    expect(await err(() => defineService('S', { a: method(), b: method({ name: 'a' }) }))).toBe('invalid option S.b: travels as S.a, as S.a does');
    expect(await err(() => defineService('S', { a: (() => 1) as never }))).toBe('invalid option S.a: expected method() or stream()');
    expect(await err(() => serviceClient({ call: () => ({}) } as never, Vault, { codex: 1 } as never))).toContain('not an option of serviceClient (did you mean codec?)');
  });

  it('refuses, at run time too, an implementation that misses a method (JavaScript, casts)', () => {
    class Partial {
      add() {
        return 1;
      }
    }
    expect(() => OccamsService(Vault)(Partial as never)).toThrow('@OccamsService(Vault): Partial has no method echo');
    expect(() => new MethodDispatch().addService(Vault, { add: () => 1 } as never)).toThrow('MethodDispatch.addService(Vault): the implementation has no method echo');
  });
});
