import * as protocol from '../protocol/index.js';
import { describeServer, type ServerDescription, type ServiceDescription } from '../stream/index.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, parse, positionals } from './command-line.js';
import { callTimeout, connect, type ConnectionFlags } from './connect.js';
import { ExitCode, UsageError } from './exit-codes.js';
import { type Streams, toJson } from './output.js';

export const LIST_HELP = `Usage: nestjs-occams list ADDRESS [options]

Prints the patterns the server answers, one per line (then its event
patterns, marked "(event)"), from server reflection. The server needs
reflection on (RpcServer / OccamsServer option reflection: true); when it
is off this says so and exits with code 5.

Options:
      --json              the server's whole description as JSON

${CONNECTION_HELP}`;

export const DESCRIBE_HELP = `Usage: nestjs-occams describe ADDRESS [SERVICE] [options]

Describes the server (version, features, services, patterns, events) or
one typed service: each method's pattern, whether it answers one value or
a stream, its declared error's wire form and whether it is idempotent.
Needs reflection on, as list does.

Options:
      --json              as JSON

${CONNECTION_HELP}`;

const OPTIONS = { ...CONNECTION_OPTIONS, json: { type: 'boolean' } } as const;

interface DescribeFlags extends ConnectionFlags {
  json?: boolean;
  help?: boolean;
}

const FEATURE_NAMES: [number, string][] = [
  [protocol.FEATURE_EVENTS, 'events'],
  [protocol.FEATURE_META, 'metadata'],
  [protocol.FEATURE_STREAMING, 'streaming'],
  [protocol.FEATURE_CANCEL, 'cancel'],
  [protocol.FEATURE_DEADLINE, 'deadline'],
  [protocol.FEATURE_ERROR_VALUE, 'error-value'],
  [protocol.FEATURE_GOAWAY, 'goaway'],
  [protocol.FEATURE_ERRNO_MESSAGE, 'errno-message'],
  [protocol.FEATURE_CREDIT, 'credit'],
  [protocol.FEATURE_GOAWAY_ACK, 'goaway-ack'],
  [protocol.FEATURE_RECORDS, 'records'],
  [protocol.FEATURE_OVERLOADED, 'overloaded'],
];

async function fetchDescription(
  command: string,
  args: string[],
  io: Streams,
  help: string,
  names: string[],
): Promise<{ d: ServerDescription; flags: Partial<DescribeFlags>; rest: string[] } | ExitCode> {
  const { values, positionals: given } = parse<DescribeFlags>(command, args, OPTIONS);
  if (values.help) {
    io.stdout.write(`${help}\n`);
    return ExitCode.Ok;
  }
  const [address, ...rest] = positionals(command, given, names, names.length - 1);
  const pool = await connect(address!, values);
  try {
    return { d: await describeServer(pool, { timeout: callTimeout(values) }), flags: values, rest };
  } finally {
    await pool.close();
  }
}

export async function listCommand(args: string[], io: Streams): Promise<ExitCode> {
  const got = await fetchDescription('list', args, io, LIST_HELP, ['ADDRESS']);
  if (typeof got === 'number') return got;
  const { d, flags } = got;
  if (flags.json) io.stdout.write(`${toJson(d, 2)}\n`);
  else io.stdout.write([...d.patterns, ...d.events.map((e) => `${e} (event)`)].map((l) => `${l}\n`).join(''));
  return ExitCode.Ok;
}

export async function describeCommand(args: string[], io: Streams): Promise<ExitCode> {
  const got = await fetchDescription('describe', args, io, DESCRIBE_HELP, ['ADDRESS', 'SERVICE']);
  if (typeof got === 'number') return got;
  const { d, flags, rest } = got;
  const name = rest[0];
  if (name !== undefined) {
    const service = d.services.find((s) => s.name === name);
    if (service === undefined) {
      const known = d.services.map((s) => s.name).join(', ') || 'none';
      throw new UsageError(`describe: the server has no typed service ${name} (its typed services: ${known}; \`nestjs-occams list\` shows every pattern)`);
    }
    io.stdout.write(flags.json ? `${toJson(service, 2)}\n` : serviceText(service));
    return ExitCode.Ok;
  }
  io.stdout.write(flags.json ? `${toJson(d, 2)}\n` : serverText(d));
  return ExitCode.Ok;
}

function serviceText(s: ServiceDescription): string {
  const rows = s.methods.map((m) => {
    const notes = [m.kind === 'stream' ? 'stream' : 'method'];
    if (m.errors !== undefined) notes.push(`errors: ${m.errors}${m.errorClass ? ` (${m.errorClass})` : ''}`);
    if (m.idempotent) notes.push('idempotent');
    return [m.name, m.pattern, notes.join(', ')];
  });
  const w0 = Math.max(...rows.map((r) => r[0]!.length));
  const w1 = Math.max(...rows.map((r) => r[1]!.length));
  return `service ${s.name}\n${rows.map((r) => `  ${r[0]!.padEnd(w0)}  ${r[1]!.padEnd(w1)}  ${r[2]}\n`).join('')}`;
}

function serverText(d: ServerDescription): string {
  const features = FEATURE_NAMES.filter(([bit]) => (d.features & bit) !== 0).map(([, n]) => n);
  const typed = new Set(d.services.flatMap((s) => s.methods.map((m) => m.pattern)));
  const untyped = d.patterns.filter((p) => !typed.has(p));
  let out = `server ${d.server} ${d.version}, protocol v${d.protocol}, extensions ${d.extensions ? `v${d.extensions}` : 'off'}\n`;
  out += `features: ${features.join(', ') || 'none'}\n`;
  for (const s of d.services) out += `\n${serviceText(s)}`;
  if (untyped.length > 0) out += `\npatterns (no typed service)\n${untyped.map((p) => `  ${p}\n`).join('')}`;
  if (d.events.length > 0) out += `\nevents\n${d.events.map((p) => `  ${p}\n`).join('')}`;
  return out;
}
