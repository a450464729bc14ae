/** The one handler every Nest transport in the benchmark serves. */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
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
