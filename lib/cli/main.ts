#!/usr/bin/env node
/**
 * The nestjs-occams command line: `npx nestjs-occams call|stream|ping|list|describe|bench ...`.
 * It uses only the package's public stream layer (`nestjs-occams/stream`),
 * never Nest, so it starts fast and runs where Nest is not installed.
 */
import { run } from './run.js';

process.exitCode = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
