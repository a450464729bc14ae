import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';

import { InjectOccamsClient, type OccamsClient } from '../../lib/index.js';
import { OccamsHealthIndicator } from '../../lib/terminus/index.js';
import { CALCULATOR } from './gateway.controller.js';

/**
 * `GET /health`: 200 `{ status: 'ok', ... }` while the calculator answers a
 * PING within a second, 503 with the reason when it does not (what an
 * orchestrator's readiness probe calls).
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly occams: OccamsHealthIndicator,
    @InjectOccamsClient(CALCULATOR) private readonly calc: OccamsClient,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.occams.pingCheck('calculator', { client: this.calc, timeout: 1000 })]);
  }
}
