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
    // dist/ is built once, for the tests that fork real processes from it
    globalSetup: ['test/support/build-dist.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Suites open real sockets and start real Nest apps; two cores.
    maxWorkers: 2,
  },
});
