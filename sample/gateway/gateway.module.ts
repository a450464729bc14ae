import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';

import { DEFAULT_OCCAMS_PORT } from '../../lib/defaults.js';
import { OccamsModule } from '../../lib/index.js';
import { OccamsHealthIndicator } from '../../lib/terminus/index.js';
import { Calculator } from '../calculator-api.js';
import { CALCULATOR, GatewayController } from './gateway.controller.js';
import { HealthController } from './health.controller.js';

@Module({
  imports: [
    TerminusModule,
    OccamsModule.registerAsync([
      {
        name: CALCULATOR,
        useFactory: () => ({
          host: process.env.OCCAMS_HOST ?? '127.0.0.1',
          port: process.env.OCCAMS_PORT ?? DEFAULT_OCCAMS_PORT, // a string from the environment is fine
          timeout: 5000, // add and div are idempotent in the definition: retried after a timeout
        }),
        services: [Calculator], // @InjectOccamsService(CALCULATOR, Calculator)
      },
    ]),
  ],
  controllers: [GatewayController, HealthController],
  providers: [OccamsHealthIndicator],
})
export class GatewayModule {}
