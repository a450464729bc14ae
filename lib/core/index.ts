// What the layers above the stream layer (lib/nest, lib/terminus) take from
// core: option checks and two small helpers. core is not a package export;
// its public types reach users through lib/client/index.ts.
export { isAsyncIterable } from './async-iterable.js';
export { type Clock, systemClock, withTimeout } from './clock.js';
export { actionSet, flag, optionNames, positiveInt, rejectUnknownKeys, toNumber } from './validate.js';
