export * from './stream/index.js';
export * from './nest/index.js';
