/**
 * HTTP gateway in front of the calculator: `npm run sample:gateway`.
 * HTTP on 127.0.0.1:$PORT (default 3000); calculator at $OCCAMS_PORT (default 7100).
 */
import 'reflect-metadata';

import { NestFactory } from '@nestjs/core';

import { exitGracefully } from '../graceful-exit.js';
import { GatewayModule } from './gateway.module.js';

const port = Number(process.env.PORT ?? 3000);
const app = await NestFactory.create(GatewayModule, { logger: ['error', 'warn', 'log'] });
await app.listen(port, '127.0.0.1');
console.log(`gateway listening on http://127.0.0.1:${port}`);

exitGracefully('gateway', app);
