export * from './stream/index.js';
