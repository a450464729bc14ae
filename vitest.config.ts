import { defineConfig } from 'vitest/config';

/** Tests whose figure is a throughput ratio or a latency: they run alone, after the rest, so no other file shares the CPU. */
const ALONE = ['test/failover-freeze.spec.ts', 'test/limit-learning.spec.ts'];

export default defineConfig({
  // Nest resolves constructor and pipe types from decorator metadata, which
  // tsc emits (emitDecoratorMetadata) and vite's transform must emit too.
  oxc: {
    decorator: { legacy: true, emitDecoratorMetadata: true },
  },
  test: {
    globals: true,
    root: './',
    // dist/ for the tests that start real processes, built once per run
    globalSetup: ['test/support/build-dist.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Suites open real sockets and start real Nest apps; two cores.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'suite', include: ['test/**/*.spec.ts'], exclude: ALONE, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'alone', include: ALONE, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
