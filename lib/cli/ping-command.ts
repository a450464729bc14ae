import { ClientStream, formatAddress, parseAddress } from '../stream/index.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, count, duration, parse, positionals } from './command-line.js';
import { addressList, callTimeout, type ConnectionFlags, tlsOptions } from './connect.js';
import { ExitCode, exitCodeOf } from './exit-codes.js';
import { describeFailure, type Streams } from './output.js';

export const PING_HELP = `Usage: nestjs-occams ping ADDRESS [options]

Sends occams PINGs (answered by the transport itself, no handler runs) and
prints each round trip, then min/avg/max, as ping does. With several
addresses, each is pinged in turn. Exit code 0 when some PING was
answered, 3 when none was.

Options:
  -c, --count N           PINGs per address, then stop (default: until Ctrl-C)
  -i, --interval DURATION time between PINGs (default 1s)

${CONNECTION_HELP}`;

const OPTIONS = { ...CONNECTION_OPTIONS, count: { type: 'string', short: 'c' }, interval: { type: 'string', short: 'i' } } as const;

interface PingFlags extends ConnectionFlags {
  count?: string;
  interval?: string;
  help?: boolean;
}

/** One address being pinged: its connection (dialled again after it is lost) and its round trips. */
class Target {
  stream: ClientStream | undefined;
  sent = 0;
  readonly rtts: number[] = [];
  constructor(readonly name: string) {}
}

export async function pingCommand(args: string[], io: Streams, interrupted: AbortSignal): Promise<ExitCode> {
  const { values, positionals: given } = parse<PingFlags>('ping', args, OPTIONS);
  if (values.help) {
    io.stdout.write(`${PING_HELP}\n`);
    return ExitCode.Ok;
  }
  const [address] = positionals('ping', given, ['ADDRESS']);
  const targets = addressList(address!).map((a) => new Target(formatAddress(parseAddress(a))));
  const rounds = values.count === undefined ? Infinity : count(values.count, 1, 'count');
  const interval = duration(values.interval, 1000, 'interval');
  const timeout = callTimeout(values);
  const tls = tlsOptions(values);
  const options = { timeout, connectTimeout: timeout, timerResolution: Math.max(10, Math.min(1000, Math.floor(timeout / 4))), ...(tls === undefined ? {} : { tls }) };
  io.stdout.write(`PING ${targets.map((t) => t.name).join(', ')}\n`);
  let lastError: unknown;
  try {
    for (let round = 1; round <= rounds && !interrupted.aborted; round++) {
      for (const t of targets) {
        if (interrupted.aborted) break;
        t.sent++;
        const started = process.hrtime.bigint();
        try {
          if (t.stream === undefined || t.stream.state !== 'ready') {
            t.stream?.destroy();
            t.stream = await ClientStream.connect(t.name, options);
          }
          await t.stream.ping(timeout);
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          t.rtts.push(ms);
          io.stdout.write(`reply from ${t.name}: seq=${round} time=${ms.toFixed(3)} ms\n`);
        } catch (err) {
          lastError = err;
          io.stdout.write(`no reply from ${t.name}: seq=${round} ${describeFailure(err)}\n`);
        }
      }
      if (round < rounds) await sleep(interval, interrupted);
    }
  } finally {
    for (const t of targets) t.stream?.destroy();
  }
  for (const t of targets) {
    const got = t.rtts.length;
    const loss = t.sent === 0 ? 0 : (100 * (t.sent - got)) / t.sent;
    io.stdout.write(`--- ${t.name} ping statistics ---\n${t.sent} sent, ${got} received, ${loss.toFixed(0)}% loss\n`);
    if (got > 0) {
      const min = Math.min(...t.rtts);
      const max = Math.max(...t.rtts);
      const avg = t.rtts.reduce((a, b) => a + b, 0) / got;
      io.stdout.write(`rtt min/avg/max = ${min.toFixed(3)}/${avg.toFixed(3)}/${max.toFixed(3)} ms\n`);
    }
  }
  // as ping: Ctrl-C ends the run (the usual way to stop it), the exit code says whether anything answered
  if (targets.some((t) => t.rtts.length > 0)) return ExitCode.Ok;
  return lastError === undefined ? ExitCode.Interrupted : exitCodeOf(lastError) === ExitCode.Timeout ? ExitCode.Timeout : ExitCode.Unreachable;
}

/** Waits `ms`, or less when interrupted. */
function sleep(ms: number, interrupted: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      interrupted.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    interrupted.addEventListener('abort', done, { once: true });
  });
}
