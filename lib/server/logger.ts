/** Where the server writes what goes wrong (Nest's Logger fits). */
export interface RpcLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string, stack?: string): void;
}

export const consoleLogger: RpcLogger = {
  log: (m) => console.log(`[occams] ${m}`),
  warn: (m) => console.warn(`[occams] ${m}`),
  error: (m, stack) => console.error(`[occams] ${m}${stack ? `\n${stack}` : ''}`),
};

export const silentLogger: RpcLogger = { log() {}, warn() {}, error() {} };
