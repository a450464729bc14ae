/**
 * Soak server: `node soak-server.js <port> <ids-file> [host]` (host default 127.0.0.1). Serves `work` (and `idem`, the same); the
 * id of every executed request is appended to <ids-file> before its answer
 * goes out (so duplicates across servers can be counted afterwards).
 * SIGTERM = graceful close (GOAWAY, drain), then exit 0.
 */
import fs from 'node:fs';

import { ErrorCode, RpcServer, type ServerRequest, silentLogger } from '../lib/index.js';

const [portArg, idsFile, hostArg = '127.0.0.1'] = process.argv.slice(2);
const fd = fs.openSync(idsFile!, 'a');
let batch: ServerRequest[] = [];
let served = 0;

function flush(): void {
  const ids = batch;
  batch = [];
  const buf = Buffer.allocUnsafe(ids.length * 8);
  ids.forEach((req, i) => buf.writeDoubleLE(req.msg as number, i * 8));
  fs.writeSync(fd, buf);
  for (const req of ids) req.ok(req.msg);
  if (served === 0 && ids.length > 0) process.send?.({ type: 'first', at: Date.now() });
  served += ids.length;
}

const server = new RpcServer(
  {
    dispatch(req) {
      if (req.action !== 'work' && req.action !== 'idem') return void req.internal(ErrorCode.MethodNotFound);
      if (batch.length === 0) process.nextTick(flush);
      batch.push(req);
    },
  },
  { logger: silentLogger, address: `${hostArg}:${portArg}`, closeWait: 5000 },
);
await server.listen();
process.send?.({ type: 'ready', at: Date.now() });
process.once('SIGTERM', () => {
  void server.close().then(() => {
    fs.closeSync(fd);
    process.exit(0);
  });
});
// The orchestrator died (a test timed out): do not outlive it.
process.once('disconnect', () => process.exit(1));
