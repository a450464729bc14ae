/**
 * A service definition with every shape the typed layer has (values,
 * streams as Observables and AsyncIterables, the three error forms, a
 * void argument, a wire name of its own), and its Nest implementation,
 * for test/typed-service.spec.ts.
 */
import 'reflect-metadata';

import {
  type CallHandler,
  type CanActivate,
  Catch,
  Controller,
  type ExecutionContext,
  Injectable,
  Module,
  type NestInterceptor,
  type PipeTransform,
  type RpcExceptionFilter,
  UseFilters,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { Ctx, Payload, RpcException } from '@nestjs/microservices';
import { interval, map, type Observable, take, throwError } from 'rxjs';

import { defineService, method, OccamsContext, OccamsService, type OccamsServiceImplementation, stream } from '../../lib/index.js';

/** errno form: a number, as an errno or a Rust `repr(u32)` enum. */
export class VaultErrno extends Error {
  static readonly wire = 'errno';
  static fromWire(errno: number, message?: string): VaultErrno {
    return new VaultErrno(errno, message);
  }
  constructor(
    readonly errno: number,
    message = `errno ${errno}`,
  ) {
    super(message);
  }
  toWire(): number {
    return this.errno;
  }
}

/** message form: a UTF-8 string, as a Rust `String` error. */
export class Refusal extends Error {
  static readonly wire = 'message';
  static fromWire(message: string): Refusal {
    return new Refusal(message);
  }
  toWire(): string {
    return this.message;
  }
}

/** value form: a value the codec encodes, as a Rust serde error type. */
export class OverQuota extends Error {
  static readonly wire = 'value';
  static fromWire(value: { limit: number; used: number }): OverQuota {
    return new OverQuota(value.limit, value.used);
  }
  constructor(
    readonly limit: number,
    readonly used: number,
  ) {
    super(`over quota: ${used} of ${limit}`);
  }
  toWire(): { limit: number; used: number } {
    return { limit: this.limit, used: this.used };
  }
}

export const EDOM = 33;

export const Vault = defineService('Vault', {
  add: method<[number, number], number>(),
  echo: method<unknown, { echoed: unknown; pattern: string }>(),
  divide: method<[number, number], number, VaultErrno>({ errors: VaultErrno }),
  refuse: method<string, string, Refusal>({ errors: Refusal }),
  reserve: method<number, number, OverQuota>({ errors: OverQuota }),
  audited: method<string, string, Refusal>({ errors: Refusal }),
  /** an AsyncIterable: 1..n, then OverQuota when n > limit */
  countdown: stream<number, number, OverQuota>({ errors: OverQuota }),
  /** an Observable: 0..n-1 */
  ticks: stream<number, number>(),
  version: method<void, string>({ name: 'get_version', idempotent: true }),
  guarded: method<{ token: string }, string>(),
  crash: method<void, number>(),
  badErrno: method<void, number, VaultErrno>({ errors: VaultErrno }),
});

const STREAM_LIMIT = 3;

@Injectable()
class TokenGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    return ctx.switchToRpc().getData<{ token?: string }>()?.token === 'open';
  }
}

@Injectable()
class TagInterceptor implements NestInterceptor {
  intercept(_ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((v) => ({ ...(v as object), intercepted: true })));
  }
}

/** A pipe: both addends must be numbers. */
class PairPipe implements PipeTransform {
  transform(value: unknown): unknown {
    if (!Array.isArray(value) || value.length !== 2 || !value.every((v) => typeof v === 'number')) throw new RpcException('two numbers expected');
    return value;
  }
}

/** The method's own filter runs before the declared-error one: it rewrites the refusal (still a Refusal on the wire). */
@Catch(Refusal)
class AuditFilter implements RpcExceptionFilter<Refusal> {
  catch(err: Refusal): Observable<never> {
    return throwError(() => `audited: ${err.message}`);
  }
}

@Controller()
@OccamsService(Vault)
export class VaultController implements OccamsServiceImplementation<typeof Vault> {
  add(@Payload(new PairPipe()) [a, b]: [number, number]): number {
    return a + b;
  }

  @UseInterceptors(TagInterceptor)
  echo(@Payload() value: unknown, @Ctx() ctx: OccamsContext) {
    return { echoed: value, pattern: ctx.getPattern() };
  }

  divide([a, b]: [number, number]): number {
    if (b === 0) throw new VaultErrno(EDOM, 'cannot divide by zero');
    return a / b;
  }

  async refuse(why: string): Promise<string> {
    await Promise.resolve();
    if (why !== 'please') throw new Refusal(`refused: ${why}`);
    return 'granted';
  }

  reserve(n: number): Observable<number> {
    return n > 10
      ? throwError(() => new OverQuota(10, n))
      : interval(1).pipe(
          take(1),
          map(() => n),
        );
  }

  @UseFilters(new AuditFilter())
  audited(why: string): string {
    throw new Refusal(why);
  }

  async *countdown(n: number): AsyncGenerator<number> {
    for (let i = 1; i <= Math.min(n, STREAM_LIMIT); i++) yield i;
    if (n > STREAM_LIMIT) throw new OverQuota(STREAM_LIMIT, n);
  }

  ticks(n: number): Observable<number> {
    return interval(2).pipe(take(n));
  }

  version(arg: void): string {
    return `v1 (argument ${JSON.stringify(arg)})`;
  }

  @UseGuards(TokenGuard)
  guarded(): string {
    return 'inside';
  }

  crash(): number {
    throw new Error('secret detail');
  }

  badErrno(): number {
    throw new VaultErrno(-1); // not a u32: its toWire() cannot be sent
  }
}

@Module({ controllers: [VaultController] })
export class VaultModule {}
