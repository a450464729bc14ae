export * from './occams-client.js';
export * from './occams-context.js';
export * from './defaults.js';
export * from './occams-exceptions.js';
export * from './occams-module.js';
export * from './occams-server.js';
export * from './occams-transport.js';
export * from './server-config.js';
