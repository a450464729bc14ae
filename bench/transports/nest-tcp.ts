/** Nest's built-in TCP transport, pattern 'echo', ClientsModule client. */
import 'reflect-metadata';

import { NestFactory } from '@nestjs/core';
import { type ClientProxy, ClientsModule, Transport } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';

import { freePort } from '../free-port.js';
import { EchoModule, nestClientContext } from '../nest-echo.js';
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
    const { client, close } = await nestClientContext<ClientProxy>(ClientsModule.register([{ name: 'ECHO', transport: Transport.TCP, options: { host: '127.0.0.1', port } }]));
    await client.connect();
    return { call: (payload) => firstValueFrom(client.send('echo', payload)), close };
  },
};
export default transport;
