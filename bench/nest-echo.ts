/** The one handler every Nest transport in the benchmark serves. */
import 'reflect-metadata';

import { Controller, type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod, MessagePattern, Payload } from '@nestjs/microservices';

@Controller()
export class EchoController {
  @MessagePattern('echo')
  echo(@Payload() data: unknown): unknown {
    return data;
  }

  @GrpcMethod('Echo', 'Echo')
  grpcEcho(data: unknown): unknown {
    return data;
  }
}

@Module({ controllers: [EchoController] })
export class EchoModule {}

/**
 * The client side of a Nest transport in the benchmark: an application
 * context that imports `clientModule` (which provides the client as 'ECHO').
 */
export async function nestClientContext<T>(clientModule: DynamicModule): Promise<{ client: T; close: () => Promise<void> }> {
  @Module({ imports: [clientModule] })
  class ClientModule {}
  const ctx = await NestFactory.createApplicationContext(ClientModule, { logger: ['error'] });
  return { client: ctx.get<T>('ECHO'), close: () => ctx.close() };
}
