import type { DispatchDescription, MethodDescription, ServiceDescription } from '../protocol/description.js';
import type { ErrorClass } from '../service/error-class.js';
import type { ServiceDefinition } from '../service/service-definition.js';

export type { DispatchDescription, MethodDescription, ServerDescription, ServiceDescription } from '../protocol/description.js';

/**
 * Server reflection (opt-in: `reflection: true`), the occams counterpart of
 * gRPC's reflection service: a client asks with the reserved numeric action
 * DESCRIBE (docs/PROTOCOL.md) and gets a ServerDescription back as an
 * ordinary ok response. The action is numeric, in the extensions' control
 * range, so no string pattern a user writes can meet it; a server with
 * reflection off answers it `rpc_method_notfound`, never a user handler.
 */

/** A Dispatch that can tell what it serves (MethodDispatch and OccamsServer do). */
export interface Describable {
  describe(): DispatchDescription;
}

export function isDescribable(d: unknown): d is Describable {
  return typeof (d as Partial<Describable> | null)?.describe === 'function';
}

/** A method entry of a definition, as reflection tells it. */
export function describeMethod(def: ServiceDefinition, key: string): MethodDescription {
  const m = def.methods[key]!;
  const out: MethodDescription = { name: key, pattern: def.patterns[key]!, kind: m.kind };
  const errors = m.errors as ErrorClass | undefined;
  if (errors !== undefined) {
    out.errors = errors.wire;
    if (errors.name) out.errorClass = errors.name;
  }
  if (m.idempotent !== undefined) out.idempotent = m.idempotent;
  return out;
}

/** A whole definition, as reflection tells it. */
export function describeService(def: ServiceDefinition): ServiceDescription {
  return { name: def.name, methods: Object.keys(def.methods).map((key) => describeMethod(def, key)) };
}

/** Services by name, merged (methods of one service registered apart, as Nest controllers may), sorted. */
export function mergeServices(services: Iterable<ServiceDescription>): ServiceDescription[] {
  const byName = new Map<string, Map<string, MethodDescription>>();
  for (const s of services) {
    let methods = byName.get(s.name);
    if (methods === undefined) byName.set(s.name, (methods = new Map()));
    for (const m of s.methods) methods.set(m.pattern, m);
  }
  return [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, methods]) => ({ name, methods: [...methods.values()] }));
}

/** Patterns as strings, sorted, without duplicates. */
export function sortedPatterns(patterns: Iterable<string | number>): string[] {
  return [...new Set([...patterns].map(String))].sort();
}
