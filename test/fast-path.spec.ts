/**
 * The shortcut past Nest's per-request pipeline (lib/nest/handler-shortcut.ts)
 * must behave exactly as the pipeline does: every handler below is called
 * with the same requests through a server with the shortcut and one
 * without, and the outcomes (items, value, error code and message) must be
 * equal. And the shortcut must be taken only where nothing applies: every
 * kind of enhancer, global and local, turns it off (exception filters
 * excepted: they run on the shortcut too).
 */
import 'reflect-metadata';

import { execFileSync } from 'node:child_process';

import {
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  Catch,
  Controller,
  createParamDecorator,
  type ExceptionFilter,
  type ExecutionContext,
  type INestMicroservice,
  Injectable,
  Module,
  type NestInterceptor,
  type PipeTransform,
  Scope,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
} from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { map, type Observable, of, throwError } from 'rxjs';

import { ClientStream, type OccamsContext, type OccamsError, OccamsServer, type TcpAddress } from '../lib/index.js';

@Injectable()
class Double implements PipeTransform {
  transform(v: unknown): unknown {
    return typeof v === 'number' ? v * 2 : v;
  }
}
@Injectable()
class Deny implements CanActivate {
  canActivate(): boolean {
    return false;
  }
}
@Injectable()
class PlusOne implements NestInterceptor {
  intercept(_ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((v) => (typeof v === 'number' ? v + 1 : v)));
  }
}
@Catch()
class Reshape implements ExceptionFilter {
  catch(err: unknown, _host: ArgumentsHost): Observable<never> {
    return throwError(() => ({ status: 'error', message: `reshaped: ${(err as Error).message}` }));
  }
}
@Catch()
class NamePattern implements ExceptionFilter {
  catch(err: unknown, host: ArgumentsHost): Observable<never> {
    const ctx = host.switchToRpc().getContext<OccamsContext>();
    return throwError(() => ({ status: 'error', message: `${ctx.getPattern()} [${ctx.getArgs().length}]: ${(err as Error).message}` }));
  }
}
const Pattern = createParamDecorator((_data: unknown, ctx: ExecutionContext) => ctx.switchToRpc().getContext<OccamsContext>().getPattern());

@Controller()
class Plain {
  @MessagePattern('plain')
  plain(n: number): number {
    return n + 1;
  }
  @MessagePattern('field')
  field(@Payload('a') a: number): number {
    return a * 10;
  }
  @MessagePattern('ctx')
  ctx(@Payload() n: number, @Ctx() ctx: OccamsContext): string {
    return `${ctx.getPattern()}:${n}`;
  }
  @MessagePattern('ctxUndecorated')
  ctxUndecorated(n: number, ctx?: OccamsContext): string {
    return `${typeof ctx}:${n}`; // no decorators: Nest 12 passes the payload alone
  }
  @MessagePattern('filterReadsCtx')
  @UseFilters(NamePattern)
  filterReadsCtx(@Payload() n: number): number {
    if (n > 0) throw new Error(`no ${n}`);
    return n;
  }
  @MessagePattern('filterReadsCtxAsync')
  @UseFilters(NamePattern)
  async filterReadsCtxAsync(@Payload() n: number): Promise<number> {
    throw new Error(`async no ${n}`);
  }
  @MessagePattern('filterReadsCtxObservable')
  @UseFilters(NamePattern)
  filterReadsCtxObservable(@Payload() n: number): Observable<number> {
    return throwError(() => new Error(`observable no ${n}`));
  }
  @MessagePattern('throws')
  throws(): never {
    throw new RpcException({ code: 'E_BAD', message: 'bad input' });
  }
  @MessagePattern('throwsPlain')
  throwsPlain(): never {
    throw new Error('secret detail');
  }
  @MessagePattern('async')
  async asyncValue(n: number): Promise<number> {
    await Promise.resolve();
    return n * 3;
  }
  @MessagePattern('rejects')
  async rejects(): Promise<never> {
    await Promise.resolve();
    throw new RpcException('rejected');
  }
  @MessagePattern('stream')
  stream(n: number): Observable<number> {
    return of(n, n + 1, n + 2);
  }
  @MessagePattern('streamError')
  streamError(): Observable<never> {
    return throwError(() => new RpcException('stream broke'));
  }
  @MessagePattern('asyncObservable')
  async asyncObservable(n: number): Promise<Observable<number>> {
    return of(n * 5);
  }
  @MessagePattern('filtered')
  @UseFilters(Reshape)
  filtered(): never {
    throw new Error('inner');
  }
  @MessagePattern('methodPipe')
  @UsePipes(Double)
  methodPipe(n: number): number {
    return n;
  }
  @MessagePattern('paramPipe')
  paramPipe(@Payload(Double) n: number): number {
    return n;
  }
  @MessagePattern('guarded')
  @UseGuards(Deny)
  guarded(): string {
    return 'ran';
  }
  @MessagePattern('intercepted')
  @UseInterceptors(PlusOne)
  intercepted(n: number): number {
    return n;
  }
  @MessagePattern('decorated')
  decorated(@Pattern() p: string): string {
    return `pattern ${p}`;
  }
}

@Controller()
@UseGuards(Deny)
class ClassGuarded {
  @MessagePattern('classGuarded')
  run(): string {
    return 'ran';
  }
}

@Controller({ scope: Scope.REQUEST })
class RequestScoped {
  @MessagePattern('scoped')
  run(n: number): number {
    return n - 1;
  }
}

@Module({ controllers: [Plain, ClassGuarded, RequestScoped], providers: [Double, Deny, PlusOne, Reshape] })
class LocalModule {}

@Controller()
class Bare {
  @MessagePattern('bare')
  bare(n: number): number {
    return n;
  }
  @MessagePattern('bareThrows')
  bareThrows(): never {
    throw new Error('x');
  }
}
@Module({ controllers: [Bare] })
class BareModule {}
@Module({ controllers: [Bare], providers: [{ provide: APP_GUARD, useClass: Deny }] })
class AppGuardModule {}

type Outcome = { items: unknown[]; value?: unknown; error?: { code: string; message: string } };

function outcome(stream: ClientStream, pattern: string, value: unknown): Promise<Outcome> {
  return new Promise((resolve) => {
    const items: unknown[] = [];
    stream.call(pattern, value, {
      onItem: (v) => items.push(v),
      onResult: (v) => resolve({ items, value: v }),
      onError: (e: OccamsError) => resolve({ items, error: { code: e.code, message: e.message } }),
    });
  });
}

interface Served {
  app: INestMicroservice;
  strategy: OccamsServer;
  stream: ClientStream;
}

async function serve(module: unknown, fastPath: boolean, setup?: (app: INestMicroservice) => void): Promise<Served> {
  const strategy = new OccamsServer({ port: 0, fastPath });
  const app = await NestFactory.createMicroservice(module as never, { strategy, logger: false });
  setup?.(app);
  await app.listen();
  const stream = await ClientStream.connect({ host: '127.0.0.1', port: (strategy.address as TcpAddress).port });
  return { app, strategy, stream };
}

async function stop(s: Served): Promise<void> {
  await s.stream.close();
  await s.app.close();
}

const CASES: [pattern: string, value: unknown, fast: boolean][] = [
  ['plain', 1, true],
  ['field', { a: 4 }, true],
  ['ctx', 7, true],
  ['ctxUndecorated', 8, true],
  ['filterReadsCtx', 3, true],
  ['filterReadsCtx', 0, true],
  ['filterReadsCtxAsync', 4, true],
  ['filterReadsCtxObservable', 5, true],
  ['throws', null, true],
  ['throwsPlain', null, true],
  ['async', 2, true],
  ['rejects', null, true],
  ['stream', 10, true],
  ['streamError', null, true],
  ['asyncObservable', 3, true],
  ['filtered', null, true],
  ['methodPipe', 5, false],
  ['paramPipe', 5, false],
  ['guarded', null, false],
  ['intercepted', 5, false],
  ['decorated', null, false],
  ['classGuarded', null, false],
  ['scoped', 9, false],
];

describe('the shortcut past Nest pipeline', () => {
  let fast: Served;
  let slow: Served;
  beforeAll(async () => {
    fast = await serve(LocalModule, true);
    slow = await serve(LocalModule, false);
  });
  afterAll(async () => {
    await stop(fast);
    await stop(slow);
  });

  it.each(CASES)('%s %o: same outcome with and without it (shortcut expected: %s)', async (pattern, value, expectFast) => {
    const a = await outcome(fast.stream, pattern, value);
    const b = await outcome(slow.stream, pattern, value);
    expect(a).toEqual(b);
    expect(fast.strategy.isFastPath(pattern)).toBe(expectFast);
    expect(slow.strategy.isFastPath(pattern)).toBe(false);
  });

  it('answers what the pipeline answers, value by value', async () => {
    expect(await outcome(fast.stream, 'plain', 1)).toEqual({ items: [], value: 2 });
    expect(await outcome(fast.stream, 'field', { a: 4 })).toEqual({ items: [], value: 40 });
    expect(await outcome(fast.stream, 'ctx', 7)).toEqual({ items: [], value: 'ctx:7' });
    expect(await outcome(fast.stream, 'stream', 10)).toEqual({ items: [10, 11, 12], value: undefined });
    expect((await outcome(fast.stream, 'throwsPlain', null)).error?.message).toMatch(/^internal server error$/i);
    expect((await outcome(fast.stream, 'filtered', null)).error?.message).toContain('reshaped: inner');
    expect(await outcome(fast.stream, 'ctxUndecorated', 8)).toEqual({ items: [], value: 'undefined:8' });
    expect((await outcome(fast.stream, 'filterReadsCtx', 3)).error?.message).toContain('filterReadsCtx [2]: no 3');
    expect((await outcome(fast.stream, 'filterReadsCtxAsync', 4)).error?.message).toContain('filterReadsCtxAsync [2]: async no 4');
    expect((await outcome(fast.stream, 'filterReadsCtxObservable', 5)).error?.message).toContain('filterReadsCtxObservable [2]: observable no 5');
    expect(await outcome(fast.stream, 'methodPipe', 5)).toEqual({ items: [], value: 10 });
    expect(await outcome(fast.stream, 'intercepted', 5)).toEqual({ items: [], value: 6 });
    expect((await outcome(fast.stream, 'guarded', null)).error?.message).toBe('Forbidden resource');
  });

  it('any global pipe, guard or interceptor turns it off; a global filter applies on it', async () => {
    const setups: [string, (app: INestMicroservice) => void, boolean][] = [
      ['none', () => {}, true],
      ['pipe', (app) => app.useGlobalPipes(new Double()), false],
      ['guard', (app) => app.useGlobalGuards(new Deny()), false],
      ['interceptor', (app) => app.useGlobalInterceptors(new PlusOne()), false],
      ['filter', (app) => app.useGlobalFilters(new Reshape()), true],
    ];
    for (const [what, setup, expectFast] of setups) {
      const withIt = await serve(BareModule, true, setup);
      const without = await serve(BareModule, false, setup);
      try {
        for (const [pattern, value] of [
          ['bare', 4],
          ['bareThrows', null],
        ] as const) {
          expect(await outcome(withIt.stream, pattern, value), `${what} ${pattern}`).toEqual(await outcome(without.stream, pattern, value));
          expect(withIt.strategy.isFastPath(pattern), `${what} ${pattern}`).toBe(expectFast);
        }
      } finally {
        await stop(withIt);
        await stop(without);
      }
    }
    const appGuard = await serve(AppGuardModule, true);
    try {
      expect((await outcome(appGuard.stream, 'bare', 1)).error?.message).toBe('Forbidden resource');
      expect(appGuard.strategy.isFastPath('bare')).toBe(false);
    } finally {
      await stop(appGuard);
    }
  });
});

describe('the shortcut is installed by an OccamsServer, not by an import', () => {
  it('a process that imports the package (an HTTP app calling out) leaves Nest as it is; the first OccamsServer installs it', () => {
    const script = [
      "import 'reflect-metadata';",
      "import { RpcContextCreator } from '@nestjs/microservices/context/rpc-context-creator.js';",
      "const { OccamsClient, OccamsServer } = await import('./dist/lib/index.js');",
      "const patched = () => Object.getOwnPropertySymbols(RpcContextCreator.prototype).some((s) => s === Symbol.for('nestjs-occams.rpc-context-creator.recipes'));",
      'const before = patched();',
      'new OccamsClient({ port: 1 });',
      'const afterClient = patched();',
      'new OccamsServer({ port: 0, fastPath: false });',
      'const afterSlowServer = patched();',
      'new OccamsServer({ port: 0 });',
      'console.log(JSON.stringify({ before, afterClient, afterSlowServer, afterServer: patched() }));',
    ].join('\n');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd(), timeout: 20_000 }).toString();
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ before: false, afterClient: false, afterSlowServer: false, afterServer: true });
  });
});
