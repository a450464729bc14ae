import { ErrorCode } from '../errors.js';

export type NotFoundCode = typeof ErrorCode.MethodNotFound | typeof ErrorCode.ServiceNotFound;

/**
 * Which `rpc_*_notfound` an action no handler serves gets, as the Rust crate
 * answers it: the crate splits a string action at its first dot into service
 * and method, and answers `rpc_service_notfound` when it has no such service.
 * So `Calculator.nope`, with other `Calculator.*` handlers, is
 * `rpc_method_notfound`; `Nope.x` is `rpc_service_notfound`. An action with
 * no dot (or a numeric one) is `rpc_method_notfound`, as before.
 *
 * The services (every pattern's part before its first dot) are gathered on
 * the first miss and kept until `clear()`, which the owner calls whenever its
 * handlers change: the miss path costs a slice and a Set lookup, the hit path
 * nothing.
 */
export class ServiceIndex {
  private services: Set<string> | undefined = undefined;

  constructor(private readonly patterns: () => Iterable<string | number>) {}

  /** Handlers changed: gather the services again on the next miss. */
  clear(): void {
    this.services = undefined;
  }

  notFoundCode(action: string | number): NotFoundCode {
    const dot = typeof action === 'string' ? action.indexOf('.') : -1;
    if (dot < 0) return ErrorCode.MethodNotFound;
    this.services ??= this.gather();
    return this.services.has((action as string).slice(0, dot)) ? ErrorCode.MethodNotFound : ErrorCode.ServiceNotFound;
  }

  private gather(): Set<string> {
    const services = new Set<string>();
    for (const pattern of this.patterns()) {
      const dot = typeof pattern === 'string' ? pattern.indexOf('.') : -1;
      if (dot >= 0) services.add((pattern as string).slice(0, dot));
    }
    return services;
  }
}
