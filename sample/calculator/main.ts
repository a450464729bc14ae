/**
 * The Calculator microservice on occams: `npm run sample:server`.
 * Listens on 127.0.0.1:$OCCAMS_PORT (default 7100); stops on SIGTERM/SIGINT.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { DEFAULT_OCCAMS_PORT, OccamsServer } from '../../lib/index.js';
import { CalculatorModule } from './calculator.module.js';
import { exitGracefully } from '../graceful-exit.js';

const port = Number(process.env.OCCAMS_PORT ?? DEFAULT_OCCAMS_PORT);
const app = await NestFactory.createMicroservice(CalculatorModule, {
  strategy: new OccamsServer({ host: '127.0.0.1', port }),
});
await app.listen();
console.log(`calculator listening on 127.0.0.1:${port}`);

exitGracefully('calculator', app);
