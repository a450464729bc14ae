// Which per-call objects V8 allocates directly in the old generation after a burst of long calls
// (bench/results/big-values-slow-phase.md): the Nest client of the `occams` bench transport in this
// process, its server in another (bench/server-process.ts); 64 callers send 2 rounds of 8 MiB Buffers,
// then 65,536 calls of the 16 KiB mixed object with `firstValueFrom(client.send())`; for each of those it
// asks V8 whether rxjs's observer object literal (the one `firstValueFrom` makes per call, reached as the
// subscriber's `destination.partialObserver`) was born old. Build first (npx tsc -p tsconfig.build.json).
// usage: node --allow-natives-syntax bench/born-old.mjs [runs 5]   (WARM=1: 8,192 small calls before the burst)
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MiB = 2 ** 20;

async function run() {
  await import('reflect-metadata');
  const { firstValueFrom } = await import('rxjs');
  process.env.OCCAMS_BENCH_MAX_FRAME = String(16 * MiB);
  const { startServerProcess } = await import('../dist/bench/server-process.js');
  const { nestClientContext } = await import('../dist/bench/nest-echo.js');
  const { OccamsModule } = await import('../dist/lib/index.js');
  const { mixed } = await import('../dist/bench/transport.js');
  // (V8's natives syntax, parsed only here: the flag is on in this process)
  const inYoung = new Function('o', 'return %InYoungGeneration(o)');
  const server = await startServerProcess('occams');
  const { client, close } = await nestClientContext(OccamsModule.register([{ name: 'ECHO', host: '127.0.0.1', port: server.port, maxInFlight: 128 }]));
  await client.connect();
  let old = 0;
  let young = 0;
  const call = (payload, check) => {
    const observable = client.send('echo', payload);
    if (check) {
      const subscribe = observable.subscribe.bind(observable);
      observable.subscribe = (...args) => {
        const observer = args[0]?.destination?.partialObserver;
        if (observer !== undefined) inYoung(observer) ? young++ : old++;
        return subscribe(...args);
      };
    }
    return firstValueFrom(observable);
  };
  const phase = async (n, payload, check) => {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next++ < n) await call(payload, check);
      }),
    );
    return n / ((performance.now() - t0) / 1000);
  };
  const small = mixed(16 * 1024);
  if (process.env.WARM) await phase(8192, small, false);
  await phase(128, Buffer.alloc(8 * MiB, 7), false);
  old = young = 0;
  const rate = await phase(65536, small, true);
  process.send({ rate, old, young });
  await close();
  await server.stop();
  process.exit(0);
}

if (process.argv[2] === '--child') await run();
else {
  const runs = Number(process.argv[2] ?? 5);
  for (let i = 0; i < runs; i++) {
    const child = fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: ['--allow-natives-syntax'] });
    const r = await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`run exited with ${code}`)));
    });
    await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
    console.log(`run ${i + 1}: ${r.rate.toFixed(0)} calls/s of 16 KiB after the burst; firstValueFrom observers born old ${r.old}, young ${r.young}`);
  }
}
