import { InvalidOptionError } from '../errors.js';

/**
 * Option checks shared by every component's normalizing function. Each
 * error names the option as the user wrote it. Numbers may arrive as
 * strings (environment variables, ConfigService): a string of digits is
 * read as the number it spells.
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

/** A number as given, or the number a string of digits spells; NaN otherwise. */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  return NaN;
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
