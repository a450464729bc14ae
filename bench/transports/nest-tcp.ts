/** Nest's built-in TCP transport, pattern 'echo', ClientsModule client. */
import 'reflect-metadata';
import { type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type ClientProxy, ClientsModule, Transport } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { freePort } from '../free-port.js';
import { EchoModule } from '../nest-echo.js';
import type { BenchTransport } from '../transport.js';

const transport: BenchTransport = {
  name: 'nest-tcp',
  async serve() {
    const port = await freePort();
    const app = await NestFactory.createMicroservice(EchoModule, {
      transport: Transport.TCP,
      options: { host: '127.0.0.1', port },
      logger: ['error'],
    });
    await app.listen();
    return { port, close: () => app.close() };
  },
  async connect(port) {
    @Module({ imports: [ClientsModule.register([{ name: 'ECHO', transport: Transport.TCP, options: { host: '127.0.0.1', port } }])] })
    class ClientModule {}
    const ctx: INestApplicationContext = await NestFactory.createApplicationContext(ClientModule, { logger: ['error'] });
    const client = ctx.get<ClientProxy>('ECHO');
    await client.connect();
    return {
      call: (payload) => firstValueFrom(client.send('echo', payload)),
      close: () => ctx.close(),
    };
  },
};
export default transport;
