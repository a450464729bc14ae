/**
 * OccamsModule and OccamsClient across application lifetimes: each app
 * built from one module definition gets its own client, closed with it; a
 * closed client reconnects; the README's registerAsync + ConfigService
 * snippet works with the string the environment gives.
 */
import 'reflect-metadata';

import { type INestApplicationContext, Inject, Injectable, type LoggerService, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { ClientProxy, ClientsModule } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom } from 'rxjs';

import { InjectOccamsClient, OccamsClient, OccamsModule, RemoteErrnoError } from '../lib/index.js';
import { TestAppModule } from './support/nest-apps.js';
import { startMicroservice as startApp } from './support/nest-boot.js';
import { waitFor } from './support/servers.js';

const startMicroservice = (logger: LoggerService | false = false) => startApp(TestAppModule, {}, logger);

@Injectable()
class Caller {
  constructor(@InjectOccamsClient('MATH') readonly math: OccamsClient) {}
  sum(values: number[]): Promise<number> {
    return firstValueFrom(this.math.send<number>({ cmd: 'sum' }, values));
  }
}

describe('OccamsModule: a client per application', () => {
  let ms: Awaited<ReturnType<typeof startMicroservice>>;
  beforeAll(async () => {
    ms = await startMicroservice();
  });
  afterAll(async () => {
    await ms.app.close();
  });

  it('two apps from one register() definition, created and closed one after the other, both call', async () => {
    @Module({ imports: [OccamsModule.register([{ name: 'MATH', port: ms.port }])], providers: [Caller] })
    class AppModule {}

    const clients: OccamsClient[] = [];
    for (let round = 0; round < 2; round++) {
      const app: INestApplicationContext = await NestFactory.createApplicationContext(AppModule, { logger: false });
      const caller = app.get(Caller);
      clients.push(caller.math);
      expect(await caller.sum([round, 40, 2])).toBe(round + 42);
      await app.close();
    }
    expect(clients[0]).not.toBe(clients[1]); // one client per app, each closed with its app
  });

  it('two apps from one registerAsync() definition, one after the other, both call', async () => {
    @Module({
      imports: [OccamsModule.registerAsync([{ name: 'MATH', useFactory: () => ({ port: ms.port }) }])],
      providers: [Caller],
    })
    class AppModule {}

    for (let round = 0; round < 2; round++) {
      const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
      expect(await app.get(Caller).sum([round, 1])).toBe(round + 1);
      await app.close();
    }
  });

  it("the README's registerAsync + ConfigService snippet works with the string the environment gives", async () => {
    process.env.CALC_PORT = String(ms.port);
    try {
      @Module({
        imports: [
          ConfigModule.forRoot({ ignoreEnvFile: true }),
          OccamsModule.registerAsync([
            {
              name: 'MATH',
              imports: [ConfigModule],
              inject: [ConfigService],
              useFactory: (config: ConfigService) => ({ host: config.get('CALC_HOST', '127.0.0.1'), port: config.get('CALC_PORT', 7100) }),
            },
          ]),
        ],
        providers: [Caller],
      })
      class AppModule {}

      const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
      expect(typeof app.get(ConfigService).get('CALC_PORT')).toBe('string');
      expect(await app.get(Caller).sum([20, 22])).toBe(42);
      await app.close();
    } finally {
      delete process.env.CALC_PORT;
    }
  });
});

describe("Nest's own convention: ClientsModule with customClass", () => {
  let ms: Awaited<ReturnType<typeof startMicroservice>>;
  beforeAll(async () => {
    ms = await startMicroservice();
  });
  afterAll(async () => {
    await ms.app.close();
  });

  // This file is type-checked by `npm test` (tsc -p tsconfig.json, strict):
  // `customClass: OccamsClient` compiling is half of the test.
  it('ClientsModule.register([{ name, customClass: OccamsClient, options }]) type-checks, builds an OccamsClient from the options, and calls', async () => {
    @Injectable()
    class NestStyleCaller {
      constructor(@Inject('MATH') readonly math: ClientProxy) {}
    }
    @Module({
      imports: [ClientsModule.register([{ name: 'MATH', customClass: OccamsClient, options: { host: '127.0.0.1', port: ms.port, timeout: 5000 } }])],
      providers: [NestStyleCaller],
    })
    class AppModule {}

    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      const { math } = app.get(NestStyleCaller);
      expect(math).toBeInstanceOf(OccamsClient);
      expect(await firstValueFrom(math.send<number>({ cmd: 'sum' }, [40, 2]))).toBe(42);
      const statuses: string[] = [];
      const sub = (math as OccamsClient).status.subscribe((s) => statuses.push(s));
      sub.unsubscribe();
      expect(statuses).toEqual(['connected']);
    } finally {
      await app.close();
    }
  });

  it('a bad option given through customClass fails in ClientsModule.register() (it builds the client there), naming it', () => {
    expect(() => ClientsModule.register([{ name: 'MATH', customClass: OccamsClient, options: { prot: 7100 } }])).toThrow(
      /invalid option prot: not an option of OccamsClient \(did you mean port\?\)/,
    );
  });
});

describe('OccamsClient after close()', () => {
  let ms: Awaited<ReturnType<typeof startMicroservice>>;
  beforeAll(async () => {
    ms = await startMicroservice();
  });
  afterAll(async () => {
    await ms.app.close();
  });

  it('reconnects on the next send() or connect(), as Nest clients do; listeners follow', async () => {
    const client = new OccamsClient({ port: ms.port });
    const states: string[] = [];
    client.on('state', (_pool, next) => states.push(next));
    const statuses: string[] = [];
    const sub = client.status.subscribe((s) => statuses.push(s));

    expect(await firstValueFrom(client.send('echo', 1))).toBe(1);
    await client.close();
    expect(statuses.at(-1)).toBe('disconnected');

    expect(await firstValueFrom(client.send('echo', 2))).toBe(2); // a new pool, opened on demand
    await client.close();
    await client.connect();
    expect(statuses.at(-1)).toBe('connected');
    expect(await client.request('echo', 3)).toBe(3);
    await client.close();

    expect(states.filter((s) => s === 'ready').length).toBe(3);
    expect(states.filter((s) => s === 'closed').length).toBe(3);
    sub.unsubscribe();
  });

  it('closing while a new call starts leaves that call on the new pool', async () => {
    const client = new OccamsClient({ port: ms.port });
    await client.connect();
    const closing = client.close();
    const during = firstValueFrom(client.send('echo', 'during'));
    await closing;
    expect(await during).toBe('during');
    await client.close();
  });
});

describe('errno with a message', () => {
  let ms: Awaited<ReturnType<typeof startMicroservice>>;
  beforeAll(async () => {
    ms = await startMicroservice();
  });
  afterAll(async () => {
    await ms.app.close();
  });

  const errnoOf = (client: OccamsClient, pattern: string) =>
    firstValueFrom(client.send(pattern, {})).then(
      () => {
        throw new Error('expected an error');
      },
      (e: unknown) => e as RemoteErrnoError,
    );

  it('OccamsErrnoException(errno, message) reaches an extension client with both', async () => {
    const client = new OccamsClient({ port: ms.port });
    const err = await errnoOf(client, 'fail.errno.message');
    expect(err).toBeInstanceOf(RemoteErrnoError);
    expect(err.errno).toBe(22);
    expect(err.message).toBe('v must be >= 0');
    const plain = await errnoOf(client, 'fail.errno');
    expect(plain.errno).toBe(5);
    expect(plain.message).toBe('remote error errno 5');
    await client.close();
  });

  it('a client without the extensions (a v1 peer) gets the errno alone', async () => {
    const client = new OccamsClient({ port: ms.port, extensions: false });
    const err = await errnoOf(client, 'fail.errno.message');
    expect(err.errno).toBe(22);
    expect(err.message).toBe('remote error errno 22');
    await client.close();
  });
});

describe("the transport logs through the app's logger", () => {
  class MemoryNestLogger implements LoggerService {
    readonly lines: string[] = [];
    log(m: unknown, ctx?: string) {
      this.lines.push(`log ${ctx}: ${String(m)}`);
    }
    error(m: unknown, _stack?: string, ctx?: string) {
      this.lines.push(`error ${ctx}: ${String(m)}`);
    }
    warn(m: unknown, ctx?: string) {
      this.lines.push(`warn ${ctx}: ${String(m)}`);
    }
  }

  it("a custom logger gets OccamsServer's lines; logger: false silences them", async () => {
    const logger = new MemoryNestLogger();
    const ms = await startMicroservice(logger);
    const client = new OccamsClient({ port: ms.port });
    await lastValueFrom(client.emit('nobody.listens', {}), { defaultValue: undefined });
    await waitFor(() => logger.lines.some((l) => l.includes('There is no matching event handler')));
    expect(logger.lines.find((l) => l.includes('no matching event handler'))).toMatch(/^error OccamsServer: /);
    await client.close();
    await ms.app.close();

    const writes: string[] = [];
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (writes.push(String(chunk)), true));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (writes.push(String(chunk)), true));
    try {
      const quiet = await startMicroservice(false);
      const c = new OccamsClient({ port: quiet.port });
      await lastValueFrom(c.emit('nobody.listens', {}), { defaultValue: undefined });
      expect(await c.request('echo', 'after')).toBe('after'); // the event was handled by then
      await c.close();
      await quiet.app.close();
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
    expect(writes.filter((w) => w.includes('OccamsServer'))).toEqual([]);
  });
});
