// The Nest layer: the transport strategy, the client proxy, the module and
// what handlers and gateways use. Exported by name: what is not listed here
// is internal.
export type { OccamsCallOptions, OccamsStreamOptions } from './call-options.js';
export { OCCAMS_CLIENT_OPTIONS, OccamsClient, type OccamsClientEvents, type OccamsClientOptions, type OccamsClientStatus } from './occams-client.js';
export { OccamsContext } from './occams-context.js';
export { OccamsErrnoException } from './occams-exceptions.js';
export { type OccamsHttpErrorBody, OccamsHttpExceptionFilter, occamsHttpStatus } from './occams-http-exception-filter.js';
export {
  InjectOccamsClient,
  InjectOccamsService,
  type OccamsClientAsyncProviderOptions,
  type OccamsClientOptionsFactory,
  type OccamsClientProviderOptions,
  OccamsModule,
  type OccamsModuleAsyncOptions,
  type OccamsModuleOptions,
  occamsServiceToken,
} from './occams-module.js';
export { OCCAMS_SERVER_OPTIONS, OccamsServer, type OccamsServerEvents, type OccamsServerOptions, type OccamsServerStatus } from './occams-server.js';
export { OccamsService, type OccamsServiceImplementation } from './occams-service.js';
export { type OccamsMethodCall, type OccamsServiceClient, type OccamsStreamCall } from './occams-service-client.js';
export { OCCAMS_TRANSPORT } from './occams-transport.js';
export { occamsServerOptionsFrom } from './server-config.js';
