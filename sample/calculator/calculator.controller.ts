import { Controller, Logger } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { interval, map, type Observable, take } from 'rxjs';
import { OccamsContext, OccamsErrnoException } from '../../lib/index.js';

/** errno for an invalid argument, as in <errno.h>. */
export const EINVAL = 22;

/**
 * The Calculator service of the occams README, as Nest handlers. Any occams
 * v1 client (the Rust crate included) can call these patterns.
 */
@Controller()
export class CalculatorController {
  private readonly logger = new Logger('Calculator');
  readonly events: unknown[] = [];

  @MessagePattern('Calculator.add')
  add(@Payload() [a, b]: [number, number]): number {
    return a + b;
  }

  /** Integer quotient (truncated); dividing by zero is a user error string. */
  @MessagePattern('Calculator.div')
  div(@Payload() [a, b]: [number, number]): number {
    if (b === 0) throw new RpcException('division by zero');
    return Math.trunc(a / b);
  }

  /** v * 2, or errno 22 (EINVAL) when v < 0 (plain v1 clients get the errno, ours the message too). */
  @MessagePattern('Calculator.might_fail_with_errno')
  mightFail(@Payload() v: number): number {
    if (v < 0) throw new OccamsErrnoException(EINVAL, 'v must be >= 0');
    return v * 2;
  }

  /** Streams 1..n, one value every 10 ms (a plain v1 client gets only n). */
  @MessagePattern('Calculator.count')
  count(@Payload() n: number): Observable<number> {
    return interval(10).pipe(
      take(n),
      map((i) => i + 1),
    );
  }

  /** An event: no response. */
  @EventPattern<string>('Calculator.log')
  log(@Payload() entry: unknown, @Ctx() ctx: OccamsContext): void {
    this.events.push(entry);
    this.logger.log(`event from client ${ctx.getClientId()}: ${JSON.stringify(entry)}`);
  }

  @MessagePattern('Calculator.events')
  seenEvents(): unknown[] {
    return this.events;
  }
}
