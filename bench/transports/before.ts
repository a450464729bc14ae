/**
 * A/B against another build of this library (e.g. the commit before a
 * change), in the same interleaved run: `occams-before` and `stream-before`
 * load the library from OCCAMS_BEFORE_LIB (a built dist/lib/index.js whose
 * node_modules resolve to the same Nest), and run exactly what `occams` and
 * `stream` run.
 */
import 'reflect-metadata';

import { NestFactory } from '@nestjs/core';
import { firstValueFrom } from 'rxjs';

import { EchoModule, nestClientContext } from '../nest-echo.js';
import { benchMaxFrame, type BenchTransport, benchWindow } from '../transport.js';

async function lib(entry = 'index.js'): Promise<any> {
  const where = process.env.OCCAMS_BEFORE_LIB;
  if (!where) throw new Error('set OCCAMS_BEFORE_LIB to a built dist/lib/index.js');
  return import(where.replace(/index\.js$/, entry));
}

export const occamsBefore: BenchTransport = {
  name: 'occams-before',
  async serve() {
    const { OccamsServer } = await lib();
    const strategy = new OccamsServer({ host: '127.0.0.1', port: 0, maxFrameSize: benchMaxFrame() });
    const app = await NestFactory.createMicroservice(EchoModule, { strategy, logger: ['error'] });
    await app.listen();
    return { port: strategy.address.port, close: () => app.close() };
  },
  async connect(port) {
    const { OccamsModule } = await lib();
    const { client, close } = await nestClientContext<any>(OccamsModule.register([{ name: 'ECHO', host: '127.0.0.1', port, maxInFlight: benchWindow() }]));
    await client.connect();
    return { call: (payload) => firstValueFrom(client.send('echo', payload)), close };
  },
};

/** The stream layer's own entry (no Nest loaded), as `stream` loads it. */
const STREAM_ENTRY = 'stream/index.js';

export const streamBefore: BenchTransport = {
  name: 'stream-before',
  async serve() {
    const { MethodDispatch, RpcServer, silentLogger } = await lib(STREAM_ENTRY);
    const server = new RpcServer(new MethodDispatch({ echo: (m: unknown) => m }), { logger: silentLogger });
    const address = await server.listen('127.0.0.1:0');
    return { port: address.port, close: () => server.close() };
  },
  async connect(port) {
    const { ClientStream } = await lib(STREAM_ENTRY);
    const stream = await ClientStream.connect({ host: '127.0.0.1', port }, { maxInFlight: benchWindow() });
    return { call: (payload) => stream.request('echo', payload), close: () => stream.close() };
  },
};
