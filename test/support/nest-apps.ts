import 'reflect-metadata';

import {
  type CallHandler,
  type CanActivate,
  Catch,
  Controller,
  type ExecutionContext,
  Get,
  Injectable,
  Module,
  type NestInterceptor,
  type RpcExceptionFilter,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { IsInt, IsString, Min } from 'class-validator';
import { finalize, interval, map, type Observable, take, throwError } from 'rxjs';

import { OccamsContext, OccamsErrnoException } from '../../lib/index.js';
import { sleep } from './servers.js';

/** State the test app exposes so tests can see what handlers did. */
@Injectable()
export class Probe {
  readonly events: unknown[] = [];
  readonly metadata: unknown[] = [];
  streamsStopped = 0;
  deadlines: number[] = [];
  /** `ctx.getTimeLeft()` of each attempt of a `deadline.retry` call, by its key */
  readonly timeLeft = new Map<string, number[]>();
}

export class CreateUserDto {
  @IsString()
  name!: string;
  @IsInt()
  @Min(0)
  age!: number;
}

@Injectable()
class DenyGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    const data = ctx.switchToRpc().getData<{ token?: string }>();
    return data?.token === 'let-me-in';
  }
}

@Injectable()
class WrapInterceptor implements NestInterceptor {
  intercept(_ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((value) => ({ wrapped: value })));
  }
}

@Catch(RpcException)
class TeapotFilter implements RpcExceptionFilter<RpcException> {
  catch(exception: RpcException): Observable<never> {
    return throwError(() => ({ teapot: true, original: exception.getError() }));
  }
}

@Controller()
export class TestController {
  // constructor injection by type: proves decorator metadata survives the test transform
  constructor(private readonly probe: Probe) {}

  @MessagePattern('echo')
  echo(@Payload() data: unknown) {
    return data;
  }

  @MessagePattern({ cmd: 'sum' })
  sum(@Payload() data: number[]) {
    return data.reduce((a, b) => a + b, 0);
  }

  @MessagePattern('async')
  async asyncEcho(@Payload() data: unknown) {
    await sleep(5);
    return data;
  }

  @MessagePattern('slow')
  async slow(@Payload() ms: number) {
    await sleep(ms);
    return ms;
  }

  /** Records `ctx.getTimeLeft()` per attempt under `key`; the first attempt waits `wait` ms, then fails. */
  @MessagePattern('deadline.retry')
  async deadlineRetry(@Payload() { key, wait }: { key: string; wait: number }, @Ctx() ctx: OccamsContext) {
    const seen = this.probe.timeLeft.get(key) ?? [];
    this.probe.timeLeft.set(key, seen);
    seen.push(ctx.getTimeLeft());
    if (seen.length > 1) return seen;
    await sleep(wait);
    throw new RpcException('first attempt fails');
  }

  @MessagePattern('fail.message')
  failMessage() {
    throw new RpcException('something went wrong');
  }

  @MessagePattern('fail.errno')
  failErrno() {
    throw new RpcException({ errno: 5 });
  }

  @MessagePattern('fail.errno.message')
  failErrnoMessage() {
    throw new OccamsErrnoException(22, 'v must be >= 0');
  }

  @MessagePattern('fail.object')
  failObject() {
    throw new RpcException({ reason: 'quota', limit: 10 });
  }

  @MessagePattern('fail.crash')
  crash() {
    throw new Error('db password is hunter2');
  }

  @MessagePattern('ticks')
  ticks(@Payload() n: number): Observable<number> {
    return interval(5).pipe(
      take(n),
      finalize(() => this.probe.streamsStopped++),
    );
  }

  @MessagePattern('users.create')
  @UsePipes(
    new ValidationPipe({
      transform: true,
      exceptionFactory: (errors) => new RpcException({ message: 'validation failed', fields: errors.map((e) => e.property) }),
    }),
  )
  createUser(@Payload() dto: CreateUserDto) {
    return { created: dto.name, isDto: dto instanceof CreateUserDto };
  }

  @MessagePattern('guarded')
  @UseGuards(DenyGuard)
  guarded() {
    return 'welcome';
  }

  @MessagePattern('intercepted')
  @UseInterceptors(WrapInterceptor)
  intercepted(@Payload() v: unknown) {
    return v;
  }

  @MessagePattern('filtered')
  @UseFilters(new TeapotFilter())
  filtered() {
    throw new RpcException('brewing');
  }

  @MessagePattern('ctx')
  context(@Ctx() ctx: OccamsContext) {
    this.probe.metadata.push(ctx.getMetadata());
    return {
      pattern: ctx.getPattern(),
      seq: ctx.getSeq(),
      metadata: ctx.getMetadata() ?? null,
      timeLeft: Number.isFinite(ctx.getTimeLeft()) ? ctx.getTimeLeft() : null,
      remote: ctx.getRemoteAddress() ?? null,
    };
  }

  @EventPattern<string>('audit')
  audit(@Payload() entry: unknown, @Ctx() ctx: OccamsContext) {
    this.probe.events.push({ entry, isEvent: ctx.isEvent(), metadata: ctx.getMetadata() ?? null });
  }

  @MessagePattern('probe')
  readProbe() {
    return { events: this.probe.events, streamsStopped: this.probe.streamsStopped };
  }
}

@Controller('http')
export class HttpController {
  @Get('ping')
  ping() {
    return { pong: true };
  }
}

@Module({ controllers: [TestController], providers: [Probe] })
export class TestAppModule {}

@Module({ controllers: [TestController, HttpController], providers: [Probe] })
export class HybridAppModule {}
