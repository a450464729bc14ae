/** nestjs-occams through Nest: OccamsServer strategy, OccamsClient from OccamsModule, `send()` + RxJS. */
import 'reflect-metadata';

import { NestFactory } from '@nestjs/core';
import { firstValueFrom } from 'rxjs';

import { OccamsClient, OccamsModule, OccamsServer, type TcpAddress } from '../../lib/index.js';
import { EchoModule, nestClientContext } from '../nest-echo.js';
import { benchMaxFrame, type BenchTransport, benchWindow } from '../transport.js';

/** The occams transport, with the server's fast path on (the default) or off (Nest's full pipeline for every request). */
export function occamsTransport(name: string, fastPath: boolean): BenchTransport {
  return {
    name,
    async serve() {
      const strategy = new OccamsServer({ host: '127.0.0.1', port: 0, fastPath, maxFrameSize: benchMaxFrame() });
      const app = await NestFactory.createMicroservice(EchoModule, { strategy, logger: ['error'] });
      await app.listen();
      return { port: (strategy.address as TcpAddress).port, close: () => app.close() };
    },
    async connect(port) {
      const { client, close } = await nestClientContext<OccamsClient>(OccamsModule.register([{ name: 'ECHO', host: '127.0.0.1', port, maxInFlight: benchWindow() }]));
      await client.connect();
      return { call: (payload) => firstValueFrom(client.send('echo', payload)), close };
    },
  };
}
export default occamsTransport('occams', true);
