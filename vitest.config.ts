import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Nest resolves constructor and pipe types from decorator metadata, which
  // tsc emits (emitDecoratorMetadata) and vite's transform must emit too.
  oxc: {
    decorator: { legacy: true, emitDecoratorMetadata: true },
  },
  test: {
    globals: true,
    root: './',
    include: ['test/**/*.spec.ts'],
    // dist/ for the tests that start real processes, built once per run
    globalSetup: ['test/support/build-dist.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Suites open real sockets and start real Nest apps; two cores.
    maxWorkers: 2,
  },
});
