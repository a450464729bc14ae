export * from './constants.js';
export * from './extensions.js';
export * from './frame-decoder.js';
export * from './request-decoder.js';
export * from './request-frame.js';
export * from './response-decoder.js';
export * from './response-frame.js';
export * from './u64.js';
