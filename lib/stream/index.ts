// `nestjs-occams/stream`: the Nest-independent stream layer, client and server.
export * from '../client/index.js';
export * from '../server/index.js';
export * from '../shared.js';
