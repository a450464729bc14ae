import { streamCall, type StreamIterator } from '../stream/index.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, count, metadata, parse, positionals } from './command-line.js';
import { callTimeout, connect, type ConnectionFlags } from './connect.js';
import { ExitCode } from './exit-codes.js';
import { type Streams, toJson } from './output.js';
import { requestValue } from './request-value.js';

export const STREAM_HELP = `Usage: nestjs-occams stream ADDRESS PATTERN [JSON] [options]

Calls PATTERN with JSON as its value and prints each item of the streamed
result as one line of JSON on stdout (a single-value result prints as one
line). Ctrl-C cancels the call on the server (exit code 130). Exit codes
as for call.

Options:
  -m, --metadata KEY=VALUE  metadata the handler sees (repeatable)
      --window N            items the server may send ahead of what was printed (default 64)

${CONNECTION_HELP}
  (--timeout bounds the whole stream; default 10s; give a long one for long streams)

Example:
  nestjs-occams stream 127.0.0.1:7100 Calculator.count 5`;

const OPTIONS = { ...CONNECTION_OPTIONS, metadata: { type: 'string', short: 'm', multiple: true }, window: { type: 'string' } } as const;

interface StreamFlags extends ConnectionFlags {
  metadata?: string[];
  window?: string;
  help?: boolean;
}

export async function streamCommand(args: string[], io: Streams, interrupted: AbortSignal): Promise<ExitCode> {
  const { values, positionals: given } = parse<StreamFlags>('stream', args, OPTIONS);
  if (values.help) {
    io.stdout.write(`${STREAM_HELP}\n`);
    return ExitCode.Ok;
  }
  const [address, pattern, json] = positionals('stream', given, ['ADDRESS', 'PATTERN', 'JSON'], 1);
  const value = await requestValue(json);
  const meta = metadata(values.metadata);
  const timeout = callTimeout(values);
  const window = values.window === undefined ? undefined : count(values.window, 64, 'window');
  const pool = await connect(address!, values);
  let items: StreamIterator | undefined;
  // Ctrl-C: return() cancels the call (CANCEL goes to the server), the loop ends
  const stop = (): void => void items?.return();
  interrupted.addEventListener('abort', stop, { once: true });
  try {
    items = streamCall(pool, pattern!, value, { timeout, ...(meta === undefined ? {} : { meta }), ...(window === undefined ? {} : { window }) });
    if (interrupted.aborted) stop();
    for await (const item of items) io.stdout.write(`${toJson(item)}\n`);
    return interrupted.aborted ? ExitCode.Interrupted : ExitCode.Ok;
  } finally {
    interrupted.removeEventListener('abort', stop);
    await pool.close();
  }
}
