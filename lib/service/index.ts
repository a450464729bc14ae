// Service definitions shared by both sides of the API-call layer (no Nest, no sockets).
export { DeclaredRemoteError, markDeclaredRemoteError } from './declared-error.js';
export { type ErrnoErrorClass, type ErrorClass, type ErrorWireForm, type MessageErrorClass, type ValueErrorClass } from './error-class.js';
export { fromWireError, toWireError, type WireError } from './error-wire.js';
export {
  type AnyMethodDefinition,
  type ArgOf,
  defineService,
  type ErrorOf,
  method,
  METHOD_OPTIONS,
  type MethodDefinition,
  type MethodOptions,
  type ResultOf,
  type ServiceDefinition,
  type ServiceMethods,
  stream,
  type StreamDefinition,
} from './service-definition.js';
