import { Body, Controller, Get, HttpCode, Param, ParseIntPipe, Post, UseFilters } from '@nestjs/common';
import { lastValueFrom, toArray } from 'rxjs';
import { InjectOccamsClient, type OccamsClient, OccamsHttpExceptionFilter } from '../../lib/index.js';

export const CALCULATOR = 'CALCULATOR';

/**
 * The calculator over HTTP, through the occams client. Failed calls answer
 * with the status OccamsHttpExceptionFilter maps their code to (a handler's
 * error 422, unreachable 503, timeout 504, ...), not Nest's 500.
 */
@Controller()
@UseFilters(OccamsHttpExceptionFilter)
export class GatewayController {
  constructor(@InjectOccamsClient(CALCULATOR) private readonly calc: OccamsClient) {}

  @Get('add/:a/:b')
  add(@Param('a', ParseIntPipe) a: number, @Param('b', ParseIntPipe) b: number) {
    return this.calc.send<number>('Calculator.add', [a, b]);
  }

  @Get('div/:a/:b')
  div(@Param('a', ParseIntPipe) a: number, @Param('b', ParseIntPipe) b: number) {
    return this.calc.send<number>('Calculator.div', [a, b]);
  }

  @Get('double/:v')
  double(@Param('v', ParseIntPipe) v: number) {
    return this.calc.send<number>('Calculator.might_fail_with_errno', v, { timeout: 2000 });
  }

  /** A streamed response, collected. */
  @Get('count/:n')
  count(@Param('n', ParseIntPipe) n: number): Promise<number[]> {
    return lastValueFrom(this.calc.send<number>('Calculator.count', n).pipe(toArray()));
  }

  @Post('log')
  @HttpCode(202)
  async log(@Body() entry: unknown): Promise<{ sent: true }> {
    await lastValueFrom(this.calc.emit('Calculator.log', entry ?? {}), { defaultValue: undefined });
    return { sent: true };
  }

  @Get('events')
  events() {
    return this.calc.send('Calculator.events', {});
  }
}
