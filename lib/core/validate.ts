import { InvalidOptionError } from '../errors.js';

/**
 * Option checks shared by every component's normalizing function. Each
 * error names the option as the user wrote it. Numbers and booleans may
 * arrive as strings (environment variables, ConfigService): a string of
 * digits is read as the number it spells, 'true' / 'false' as booleans.
 */
export function positiveInt(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = toNumber(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidOptionError(name, `expected a positive integer, got ${show(value)}`);
  return n;
}

export function nonNegativeInt(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = toNumber(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidOptionError(name, `expected an integer >= 0, got ${show(value)}`);
  return n;
}

export function oneOf<T extends string>(value: unknown, allowed: readonly T[], fallback: T, name: string): T {
  if (value === undefined) return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new InvalidOptionError(name, `expected ${allowed.map((a) => `'${a}'`).join(' or ')}, got ${show(value)}`);
}

/** A boolean as given, or the one `'true'` / `'false'` spells (any case, as env and ConfigService give them). */
export function flag(value: unknown, fallback: boolean, name: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  const word = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
  if (word === 'true') return true;
  if (word === 'false') return false;
  throw new InvalidOptionError(name, `expected true or false, got ${show(value)}`);
}

/**
 * Which actions may run twice: a list of actions, a predicate, or (for
 * `allowAll`) a boolean, also as `'true'` / `'false'`. A lone string is
 * refused: it would be read as a list of its characters.
 */
export function actionSet(value: unknown, name: string, allowAll: boolean): (action: string) => boolean {
  if (value === undefined) return () => false;
  if (typeof value === 'function') return value as (action: string) => boolean;
  if (Array.isArray(value) && value.every((a) => typeof a === 'string')) {
    const set = new Set<string>(value);
    return (a) => set.has(a);
  }
  if (allowAll && (typeof value === 'boolean' || typeof value === 'string')) {
    const all = flag(value, false, name);
    return () => all;
  }
  throw new InvalidOptionError(name, `expected ${allowAll ? 'true, false, ' : ''}a list of actions or a predicate, got ${show(value)}`);
}

/** A number as given, or the number a string of digits spells; NaN otherwise. */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  return NaN;
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * An options interface's keys as a runtime table. The argument must list
 * every key of T (the compiler checks it), so the table cannot drift from
 * the interface; a literal listing a key T lacks is refused too.
 */
export function optionNames<T extends object>(names: { readonly [K in keyof Required<T>]: true }): Readonly<Record<keyof T & string, true>> {
  return names as Readonly<Record<keyof T & string, true>>;
}

/**
 * Refuses keys that are not options of `where` (a misspelt `prot`, a
 * Nest-only key): the error names the key as the user wrote it, and the
 * nearest known name when one is close.
 */
export function rejectUnknownKeys(options: unknown, known: Readonly<Record<string, true>>, where: string): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidOptionError(where, `expected an options object, got ${show(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(known, key)) continue;
    const near = nearest(key, Object.keys(known));
    throw new InvalidOptionError(key, `not an option of ${where}${near === undefined ? '' : ` (did you mean ${near}?)`}`);
  }
}

/** The known name within edit distance 2 of `key` (case-insensitive), if any. */
function nearest(key: string, names: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of names) {
    const d = editDistance(key.toLowerCase(), name.toLowerCase(), bestDistance);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, giving up (returning `cap`) once it reaches `cap`. */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap) return cap;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      row.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin >= cap) return cap;
    prev = row;
  }
  return Math.min(prev[b.length]!, cap);
}
