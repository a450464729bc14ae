/** Nest's built-in gRPC transport (@grpc/grpc-js), an equivalent unary Echo method. */
import 'reflect-metadata';

import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { NestFactory } from '@nestjs/core';
import { type ClientGrpc, ClientsModule, Transport } from '@nestjs/microservices';
import { firstValueFrom, type Observable } from 'rxjs';

import { freePort } from '../free-port.js';
import { EchoModule, nestClientContext } from '../nest-echo.js';
import type { BenchTransport } from '../transport.js';

const protoPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/proto/echo.proto');

interface EchoService {
  echo(data: unknown): Observable<unknown>;
}

const transport: BenchTransport = {
  name: 'grpc',
  async serve() {
    const port = await freePort();
    const app = await NestFactory.createMicroservice(EchoModule, {
      transport: Transport.GRPC,
      options: { package: 'bench', protoPath, url: `127.0.0.1:${port}` },
      logger: ['error'],
    });
    await app.listen();
    return { port, close: () => app.close() };
  },
  async connect(port) {
    const { client, close } = await nestClientContext<ClientGrpc>(
      ClientsModule.register([{ name: 'ECHO', transport: Transport.GRPC, options: { package: 'bench', protoPath, url: `127.0.0.1:${port}` } }]),
    );
    const service = client.getService<EchoService>('Echo');
    return { call: (payload) => firstValueFrom(service.echo(payload)), close };
  },
};
export default transport;
