export * from './address.js';
export * from './dial.js';
export * from './listen.js';
export * from './socket-reads.js';
