import { Controller, Logger } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { interval, map, type Observable, take } from 'rxjs';

import { OccamsContext, OccamsService, type OccamsServiceImplementation } from '../../lib/index.js';
import { Calculator, DivError, InvalidArgument } from '../calculator-api.js';

/**
 * The Calculator service (../calculator-api.ts) as a Nest controller:
 * `@OccamsService(Calculator)` registers each method under its pattern, and
 * the compiler checks every method is here with the definition's types.
 */
@Controller()
@OccamsService(Calculator)
export class CalculatorController implements OccamsServiceImplementation<typeof Calculator> {
  private readonly logger = new Logger('Calculator');
  readonly seen: unknown[] = [];

  add([a, b]: [number, number]): number {
    return a + b;
  }

  div([a, b]: [number, number]): number {
    if (b === 0) throw new DivError('divide_by_zero');
    const q = Math.trunc(a / b);
    if (!Number.isSafeInteger(q)) throw new DivError('overflow');
    return q;
  }

  mightFail(v: number): number {
    if (v < 0) throw new InvalidArgument('v must be >= 0');
    return v * 2;
  }

  count(n: number): Observable<number> {
    return interval(10).pipe(
      take(n),
      map((i) => i + 1),
    );
  }

  events(): unknown[] {
    return this.seen;
  }

  /** An event (no response), with a hand-written pattern: they live side by side. */
  @EventPattern<string>('Calculator.log')
  log(@Payload() entry: unknown, @Ctx() ctx: OccamsContext): void {
    this.seen.push(entry);
    this.logger.log(`event from client ${ctx.getClientId()}: ${JSON.stringify(entry)}`);
  }
}
