/**
 * Server reflection (the `reflection` option): the reserved DESCRIBE action
 * answered with what the server serves, over real sockets, from a real Nest
 * app (the sample Calculator) and from the stream layer; off by default.
 */
import fs from 'node:fs';

import { ClientStream, describeServer, ErrorCode, LIBRARY_VERSION, MethodDispatch, ReflectionOffError, RpcServer, type TcpAddress } from '../lib/index.js';
import * as protocol from '../lib/protocol/index.js';
import { CalculatorModule } from '../sample/calculator/calculator.module.js';
import { Calculator } from '../sample/calculator-api.js';
import { type Microservice, startMicroservice } from './support/nest-boot.js';
import { MemoryLogger } from './support/servers.js';

describe('server reflection', () => {
  let on: Microservice;
  let off: Microservice;
  beforeAll(async () => {
    on = await startMicroservice(CalculatorModule, { reflection: true });
    off = await startMicroservice(CalculatorModule);
  });
  afterAll(async () => {
    await on?.app.close();
    await off?.app.close();
  });

  it('tells the patterns, typed services, events, features and version of a Nest app', async () => {
    const client = await ClientStream.connect(`127.0.0.1:${on.port}`);
    try {
      const d = await describeServer(client);
      expect(d.patterns).toEqual([...Object.values(Calculator.patterns)].sort());
      expect(d.events).toEqual(['Calculator.log']);
      expect(d.services).toEqual([
        {
          name: 'Calculator',
          methods: [
            { name: 'add', pattern: 'Calculator.add', kind: 'method', idempotent: true },
            { name: 'div', pattern: 'Calculator.div', kind: 'method', errors: 'message', errorClass: 'DivError', idempotent: true },
            { name: 'mightFail', pattern: 'Calculator.might_fail_with_errno', kind: 'method', errors: 'errno', errorClass: 'InvalidArgument' },
            { name: 'count', pattern: 'Calculator.count', kind: 'stream' },
            { name: 'events', pattern: 'Calculator.events', kind: 'method' },
          ],
        },
      ]);
      expect(d).toMatchObject({ protocol: 1, extensions: 1, server: 'nestjs-occams', version: LIBRARY_VERSION });
      expect(d.features).toBe(protocol.ALL_FEATURES); // the default msgpack codec has record sessions
      // the client goes on working after it
      expect(await client.request('Calculator.add', [2, 3])).toBe(5);
    } finally {
      await client.close();
    }
  });

  it('is off by default: DESCRIBE is answered rpc_method_notfound and reaches no handler', async () => {
    const client = await ClientStream.connect(`127.0.0.1:${off.port}`);
    try {
      const err = await describeServer(client).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReflectionOffError);
      expect((err as ReflectionOffError).code).toBe(ErrorCode.ReflectionOff);
      expect(((err as ReflectionOffError).cause as { code: string }).code).toBe(ErrorCode.MethodNotFound);
      expect(await client.request('Calculator.add', [1, 1])).toBe(2);
    } finally {
      await client.close();
    }
  });

  it('cannot meet a user pattern: a handler for the number itself is never asked, on or off', async () => {
    for (const reflection of [true, false]) {
      let asked = 0;
      const dispatch = new MethodDispatch({ 'Calc.add': ([a, b]: [number, number]) => a + b }, new MemoryLogger()).add(protocol.ACTION_DESCRIBE, () => ++asked);
      const server = new RpcServer(dispatch, { logger: new MemoryLogger(), reflection });
      const address = (await server.listen()) as TcpAddress;
      const client = await ClientStream.connect(address);
      try {
        const got = await describeServer(client).then(
          (d) => d.patterns,
          (e: unknown) => (e as ReflectionOffError).code,
        );
        expect(got).toEqual(reflection ? [String(protocol.ACTION_DESCRIBE), 'Calc.add'] : ErrorCode.ReflectionOff);
        expect(asked).toBe(0);
      } finally {
        await client.close();
        await server.close();
      }
    }
  });

  it('answers plain v1 clients (no HELLO), and a server with the extensions off tells no features', async () => {
    const dispatch = new MethodDispatch().addService(Calculator, {
      add: ([a, b]) => a + b,
      div: ([a, b]) => Math.trunc(a / b),
      mightFail: (v) => v * 2,
      async *count(n) {
        for (let i = 1; i <= n; i++) yield i;
      },
      events: () => [],
    });
    const server = new RpcServer(dispatch, { logger: new MemoryLogger(), reflection: true, extensions: false });
    const address = (await server.listen()) as TcpAddress;
    const client = await ClientStream.connect(address, { extensions: false });
    try {
      const d = await describeServer(client);
      expect(d.extensions).toBe(0);
      expect(d.features).toBe(0);
      expect(d.services[0]!.methods.map((m) => `${m.pattern}:${m.kind}`)).toEqual([
        'Calculator.add:method',
        'Calculator.div:method',
        'Calculator.might_fail_with_errno:method',
        'Calculator.count:stream',
        'Calculator.events:method',
      ]);
      expect(d.events).toEqual([]);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('announces the version in package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(LIBRARY_VERSION).toBe(pkg.version);
  });
});
