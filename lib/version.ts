/** This package's version (package.json's, checked by test/reflection.spec.ts); servers with `reflection` on announce it. */
export const LIBRARY_VERSION = '0.1.0';
