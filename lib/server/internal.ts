// What the layers above the server (lib/nest) take from it besides its public
// face (./index.ts): the option table, reflection helpers, the service index
// and the reply helpers a transport strategy needs. Not a package export.
export { describeMethod, mergeServices, sortedPatterns } from './reflection.js';
export { returnQuietly } from './request-end.js';
export { RPC_SERVER_OPTIONS } from './server-options.js';
export { ServiceIndex } from './service-index.js';
export { declaredReply, replyWithUserError } from './user-replies.js';
