/** Where an Occams server listens, and a client connects, when nothing is said. */
export const DEFAULT_OCCAMS_HOST = '127.0.0.1';
export const DEFAULT_OCCAMS_PORT = 7100;
