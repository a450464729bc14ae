// Service definitions shared by both sides of the API-call layer (no Nest, no sockets).
export {
  type AnyMethodDefinition,
  type ArgOf,
  type ErrorOf,
  METHOD_OPTIONS,
  type MethodDefinition,
  type MethodOptions,
  type ResultOf,
  type ServiceDefinition,
  type ServiceMethods,
  type StreamDefinition,
  defineService,
  method,
  stream,
} from './service-definition.js';
export { type ErrnoErrorClass, type ErrorClass, type ErrorWireForm, type MessageErrorClass, type ValueErrorClass } from './error-class.js';
export { type WireError, fromWireError, toWireError } from './error-wire.js';
export { DeclaredRemoteError, markDeclaredRemoteError } from './declared-error.js';
