import { toNumber } from '../core/index.js';
import { InvalidOptionError } from '../errors.js';
import type { OccamsServerOptions } from './occams-server.js';

/**
 * Server options from environment-style config (process.env, or
 * `ConfigService#get` through `get`): `<prefix>HOST`, `<prefix>PORT`,
 * `<prefix>PATH`, `<prefix>MAX_CONNECTIONS`, `<prefix>CLOSE_WAIT`.
 *
 *   const config = app.get(ConfigService);
 *   app.connectMicroservice({ strategy: new OccamsServer(occamsServerOptionsFrom((k) => config.get(k))) });
 */
export function occamsServerOptionsFrom(get: (key: string) => string | undefined = (k) => process.env[k], prefix = 'OCCAMS_'): OccamsServerOptions {
  const options: OccamsServerOptions = {};
  const str = (k: string) => {
    const v = get(prefix + k);
    return v === undefined || v === '' ? undefined : String(v);
  };
  const num = (k: string) => {
    const v = str(k);
    if (v === undefined) return undefined;
    const n = toNumber(v);
    if (!Number.isFinite(n)) throw new InvalidOptionError(prefix + k, `expected a number, got "${v}"`);
    return n;
  };
  const host = str('HOST');
  const port = num('PORT');
  const path = str('PATH');
  const maxConnections = num('MAX_CONNECTIONS');
  const closeWait = num('CLOSE_WAIT');
  if (host !== undefined) options.host = host;
  if (port !== undefined) options.port = port;
  if (path !== undefined) options.path = path;
  if (maxConnections !== undefined) options.maxConnections = maxConnections;
  if (closeWait !== undefined) options.closeWait = closeWait;
  return options;
}
