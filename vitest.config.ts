import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globals: true,
    root: './',
    include: ['test/**/*.spec.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Suites open real sockets and start real Nest apps; two cores.
    maxWorkers: 2,
  },
});
