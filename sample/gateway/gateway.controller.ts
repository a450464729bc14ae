import { Body, Catch, Controller, Get, HttpCode, Param, ParseIntPipe, Post, UseFilters } from '@nestjs/common';
import { lastValueFrom, toArray } from 'rxjs';

import { InjectOccamsClient, InjectOccamsService, type OccamsClient, OccamsError, OccamsHttpExceptionFilter, type OccamsServiceClient } from '../../lib/index.js';
import { Calculator, DivError, InvalidArgument } from '../calculator-api.js';

export const CALCULATOR = 'CALCULATOR';

/**
 * Failed calls answer with the status their code maps to (a handler's error
 * 422, unreachable 503, timeout 504, ...), not Nest's 500; the Calculator's
 * declared errors (not OccamsErrors) are listed so that they map as the
 * remote user errors they came from.
 */
@Catch(OccamsError, DivError, InvalidArgument)
export class CalculatorHttpFilter extends OccamsHttpExceptionFilter {}

/** The calculator over HTTP, through its typed client (and the plain client for the event). */
@Controller()
@UseFilters(CalculatorHttpFilter)
export class GatewayController {
  constructor(
    @InjectOccamsService(CALCULATOR, Calculator) private readonly calc: OccamsServiceClient<typeof Calculator>,
    @InjectOccamsClient(CALCULATOR) private readonly client: OccamsClient,
  ) {}

  @Get('add/:a/:b')
  add(@Param('a', ParseIntPipe) a: number, @Param('b', ParseIntPipe) b: number) {
    return this.calc.add([a, b]);
  }

  @Get('div/:a/:b')
  div(@Param('a', ParseIntPipe) a: number, @Param('b', ParseIntPipe) b: number) {
    return this.calc.div([a, b]);
  }

  @Get('double/:v')
  double(@Param('v', ParseIntPipe) v: number) {
    return this.calc.mightFail.request(v, { timeout: 2000 });
  }

  /** A streamed response, collected. */
  @Get('count/:n')
  count(@Param('n', ParseIntPipe) n: number): Promise<number[]> {
    return lastValueFrom(this.calc.count(n).pipe(toArray()));
  }

  /** An event: the plain client's `emit()`, with the pattern string. */
  @Post('log')
  @HttpCode(202)
  async log(@Body() entry: unknown): Promise<{ sent: true }> {
    await lastValueFrom(this.client.emit('Calculator.log', entry ?? {}), { defaultValue: undefined });
    return { sent: true };
  }

  @Get('events')
  events() {
    return this.calc.events();
  }
}
