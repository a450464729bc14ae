/**
 * The Calculator microservice on occams: `npm run sample:server`.
 * Listens on $OCCAMS_HOST:$OCCAMS_PORT (default 127.0.0.1:7100; port 0 picks
 * a free one) and prints the address it bound; stops on SIGTERM/SIGINT.
 * Runs under Node, Bun and Deno alike (README, Runtimes).
 */
import 'reflect-metadata';

import { NestFactory } from '@nestjs/core';

import { DEFAULT_OCCAMS_HOST, DEFAULT_OCCAMS_PORT } from '../../lib/defaults.js';
import { formatAddress, OccamsServer } from '../../lib/index.js';
import { exitGracefully } from '../graceful-exit.js';
import { CalculatorModule } from './calculator.module.js';

const host = process.env.OCCAMS_HOST ?? DEFAULT_OCCAMS_HOST;
const port = Number(process.env.OCCAMS_PORT ?? DEFAULT_OCCAMS_PORT);
const strategy = new OccamsServer({ host, port, reflection: true });
const app = await NestFactory.createMicroservice(CalculatorModule, { strategy });
await app.listen();
console.log(`calculator listening on ${formatAddress(strategy.address!)}`);

exitGracefully('calculator', app);
