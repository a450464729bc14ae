/**
 * The stream-layer Calculator as a server process of its own (no Nest), for
 * any runtime: `node dist/sample/stream-server.js`, `bun dist/sample/stream-server.js`
 * or `deno run --allow-net --allow-read --allow-env dist/sample/stream-server.js`.
 * Listens on $OCCAMS_HOST:$OCCAMS_PORT (default 127.0.0.1:7100; port 0 picks
 * a free one) and prints the address it bound; stops on SIGTERM/SIGINT.
 */
import { DEFAULT_OCCAMS_HOST, DEFAULT_OCCAMS_PORT } from '../lib/defaults.js';
import { formatAddress, MethodDispatch, RpcServer } from '../lib/index.js';
import { calculatorMethods } from './calculator-methods.js';
import { exitGracefully } from './graceful-exit.js';

const host = process.env.OCCAMS_HOST ?? DEFAULT_OCCAMS_HOST;
const port = Number(process.env.OCCAMS_PORT ?? DEFAULT_OCCAMS_PORT);
const server = new RpcServer(new MethodDispatch(calculatorMethods), { reflection: true });
const address = await server.listen({ host, port });
console.log(`stream server listening on ${formatAddress(address)}`);

exitGracefully('stream server', server);
