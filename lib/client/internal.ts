// What the layers above the client (lib/nest, lib/terminus) take from it besides
// its public face (./index.ts). Not a package export: nothing here is in a
// published subpath, and a name here may change without notice.
export { PromiseHandler } from './call.js';
export { FAILOVER_POOL_OPTIONS } from './failover-options.js';
export { bindMethods, type MethodBinding, wireArg } from './service-client.js';
