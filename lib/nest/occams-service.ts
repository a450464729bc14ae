import { Catch, Logger, type RpcExceptionFilter } from '@nestjs/common';
import { EXCEPTION_FILTERS_METADATA } from '@nestjs/common/constants.js';
import { MessagePattern } from '@nestjs/microservices';
import { type Observable, throwError } from 'rxjs';

import type { MethodDescription } from '../protocol/index.js';
import { declaredReply, describeMethod } from '../server/internal.js';
import type { ErrorClass, MethodDefinition, ServiceDefinition, StreamDefinition } from '../service/index.js';

/**
 * What a controller must have to serve `D`: every method, taking the
 * method's argument first (more parameters may follow: `@Ctx() ctx`) and
 * giving its result as a value, a Promise or an Observable; every stream
 * giving an Observable or an AsyncIterable (an async generator) of items.
 * A method that is missing, takes another argument type or gives another
 * result type fails to compile where `@OccamsService(D)` is written.
 */
export type OccamsServiceImplementation<D extends ServiceDefinition> = {
  [K in keyof D['methods']]: D['methods'][K] extends StreamDefinition<infer A, infer I, any>
    ? (arg: A, ...rest: any[]) => Observable<I> | AsyncIterable<I> | Promise<Observable<I> | AsyncIterable<I>>
    : D['methods'][K] extends MethodDefinition<infer A, infer R, any>
      ? (arg: A, ...rest: any[]) => R | Promise<R> | Observable<R>
      : never;
};

/** The handler extras key under which a method's declared error class is kept (read by OccamsServer). */
export const DECLARED_ERRORS_EXTRA = Symbol.for('nestjs-occams:declared-errors');

/** The handler extras key under which a method's reflection entry (service name, MethodDescription) is kept (read by OccamsServer.describe). */
export const SERVICE_METHOD_EXTRA = Symbol.for('nestjs-occams:service-method');

/** What SERVICE_METHOD_EXTRA holds. */
export interface ServiceMethodExtra {
  service: string;
  method: MethodDescription;
}

const logger = new Logger('OccamsService');

/**
 * Serves a service definition from a Nest controller:
 *
 *   @Controller()
 *   @OccamsService(Calculator)
 *   export class CalculatorController implements OccamsServiceImplementation<typeof Calculator> {
 *     add([a, b]: [number, number]) { return a + b; }
 *     ...
 *   }
 *
 * Each method of the definition is registered under its pattern
 * (`Calculator.add`) as `@MessagePattern` would register it, so pipes,
 * guards, interceptors and exception filters work as usual (`@Payload()`
 * and `@Ctx()` too). A thrown instance of a method's declared error class
 * is answered in that class's wire form, from the Observable a handler
 * gives and an AsyncIterable's items alike; a filter of the method's own
 * (`@UseFilters` on the method) that catches it runs first.
 */
export function OccamsService<D extends ServiceDefinition>(def: D) {
  return <T extends abstract new (...args: any[]) => OccamsServiceImplementation<D>>(target: T): void => {
    for (const [key, m] of Object.entries(def.methods)) {
      const { owner, descriptor } = findMethod(target.prototype, key) ?? {};
      if (owner === undefined || descriptor === undefined || typeof descriptor.value !== 'function') {
        throw new TypeError(`@OccamsService(${def.name}): ${target.name} has no method ${key}`);
      }
      const pattern = def.patterns[key]!;
      const described: ServiceMethodExtra = { service: def.name, method: describeMethod(def, key) };
      if (m.errors === undefined) {
        MessagePattern(pattern, { [SERVICE_METHOD_EXTRA]: described })(owner, key, descriptor);
      } else {
        MessagePattern(pattern, { [DECLARED_ERRORS_EXTRA]: m.errors, [SERVICE_METHOD_EXTRA]: described })(owner, key, descriptor);
        // first in the method's list: the method's own filters (which Nest tries first) may still take the error
        const fn = descriptor.value as object;
        const filters = (Reflect.getMetadata(EXCEPTION_FILTERS_METADATA, fn) as unknown[] | undefined) ?? [];
        Reflect.defineMetadata(EXCEPTION_FILTERS_METADATA, [declaredErrorFilter(m.errors, pattern), ...filters], fn);
      }
    }
  };
}

function findMethod(proto: object | null, key: string): { owner: object; descriptor: PropertyDescriptor } | undefined {
  for (let p = proto; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    const descriptor = Object.getOwnPropertyDescriptor(p, key);
    if (descriptor !== undefined) return { owner: p, descriptor };
  }
  return undefined;
}

/**
 * The exception filter that answers one method's declared error class: it
 * hands OccamsServer the reply in the class's wire form. A `toWire()` that
 * gives what its form cannot carry is logged and answered rpc_internal_err.
 */
function declaredErrorFilter(cls: ErrorClass, pattern: string): RpcExceptionFilter<Error> {
  @Catch(cls)
  class DeclaredErrorFilter implements RpcExceptionFilter<Error> {
    catch(err: Error): Observable<never> {
      try {
        const reply = declaredReply(cls, err);
        return throwError(() => reply);
      } catch (e) {
        logger.error(`${pattern}: ${(e as Error).message}`);
        return throwError(() => e); // an Error no filter shaped: OccamsServer answers rpc_internal_err
      }
    }
  }
  return new DeclaredErrorFilter();
}
