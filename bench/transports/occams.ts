/** nestjs-occams through Nest: OccamsServer strategy, OccamsClient from OccamsModule, `send()` + RxJS. */
import 'reflect-metadata';
import { type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { firstValueFrom } from 'rxjs';
import { OccamsClient, OccamsModule, OccamsServer, type TcpAddress } from '../../lib/index.js';
import { EchoModule } from '../nest-echo.js';
import { type BenchTransport, benchWindow } from '../transport.js';

const transport: BenchTransport = {
  name: 'occams',
  async serve() {
    const strategy = new OccamsServer({ host: '127.0.0.1', port: 0 });
    const app = await NestFactory.createMicroservice(EchoModule, { strategy, logger: ['error'] });
    await app.listen();
    return { port: (strategy.address as TcpAddress).port, close: () => app.close() };
  },
  async connect(port) {
    @Module({ imports: [OccamsModule.register([{ name: 'ECHO', host: '127.0.0.1', port, maxInFlight: benchWindow() }])] })
    class ClientModule {}
    const ctx: INestApplicationContext = await NestFactory.createApplicationContext(ClientModule, { logger: ['error'] });
    const client = ctx.get<OccamsClient>('ECHO');
    await client.connect();
    return {
      call: (payload) => firstValueFrom(client.send('echo', payload)),
      close: () => ctx.close(),
    };
  },
};
export default transport;
