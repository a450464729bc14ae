import { rejectUnknownKeys } from '../core/index.js';
import { InvalidOptionError } from '../errors.js';

/** Keys of Nest's own client/server options that mean something else here, and what to say. */
const NEST_ONLY: Readonly<Record<string, string>> = {
  serializer:
    'is not used: values travel as MessagePack in occams frames, not as Nest packets. To change how values are encoded, pass `codec` ({ name, encode(value), decode(bytes) }) on both sides',
  deserializer:
    'is not used: values travel as MessagePack in occams frames, not as Nest packets. To change how values are decoded, pass `codec` ({ name, encode(value), decode(bytes) }) on both sides',
  transport: 'is not needed: OccamsModule and OccamsServer are the transport; write the options flat, e.g. { name, host, port }',
  options: 'is not needed: write the options flat, e.g. { name, host, port }, not { name, options: { host, port } }',
};

/**
 * Checks user options where they enter the Nest adapter: Nest's
 * serializer/deserializer (and the ClientsModule shape) are refused with
 * what to write instead, then any key `known` lacks is refused by name.
 */
export function checkNestOptions(options: unknown, known: Readonly<Record<string, true>>, where: string): void {
  if (options !== null && typeof options === 'object') {
    for (const key of Object.keys(NEST_ONLY)) {
      if (Object.hasOwn(options, key) && !Object.hasOwn(known, key)) throw new InvalidOptionError(key, `${where}: ${key} ${NEST_ONLY[key]}`);
    }
  }
  rejectUnknownKeys(options, known, where);
}
