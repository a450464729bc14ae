/** The transport id OccamsServer reports to Nest (a custom transport's symbol). */
export const OCCAMS_TRANSPORT = Symbol.for('nestjs-occams');
