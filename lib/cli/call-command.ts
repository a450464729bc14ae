import { CONNECTION_HELP, CONNECTION_OPTIONS, metadata, parse, positionals } from './command-line.js';
import { callTimeout, connect, type ConnectionFlags } from './connect.js';
import { ExitCode } from './exit-codes.js';
import { type Streams, toJson } from './output.js';
import { requestValue } from './request-value.js';

export const CALL_HELP = `Usage: nestjs-occams call ADDRESS PATTERN [JSON] [options]

Calls PATTERN once with JSON as its value (none when absent; - reads it from
stdin) and prints the result as JSON on stdout (a streamed result: one line
of JSON per item, as the stream command prints it). A failure goes to stderr as
its code and message, with exit code 1 (the server answered an error),
3 (unreachable), 4 (timeout) or 2 (bad command line).

Options:
  -m, --metadata KEY=VALUE  metadata the handler sees (repeatable; VALUE as JSON when it parses)
      --event               send as an event: no answer is awaited (exit 0 once sent)
      --compact             print the result on one line

${CONNECTION_HELP}

Example:
  nestjs-occams call 127.0.0.1:7100 Calculator.add '[2, 3]'`;

const OPTIONS = { ...CONNECTION_OPTIONS, metadata: { type: 'string', short: 'm', multiple: true }, event: { type: 'boolean' }, compact: { type: 'boolean' } } as const;

interface CallFlags extends ConnectionFlags {
  metadata?: string[];
  event?: boolean;
  compact?: boolean;
  help?: boolean;
}

export async function callCommand(args: string[], io: Streams): Promise<ExitCode> {
  const { values, positionals: given } = parse<CallFlags>('call', args, OPTIONS);
  if (values.help) {
    io.stdout.write(`${CALL_HELP}\n`);
    return ExitCode.Ok;
  }
  const [address, pattern, json] = positionals('call', given, ['ADDRESS', 'PATTERN', 'JSON'], 1);
  const value = await requestValue(json);
  const meta = metadata(values.metadata);
  const timeout = callTimeout(values);
  const pool = await connect(address!, values);
  try {
    const options = { timeout, ...(meta === undefined ? {} : { meta }), ...(values.event ? { event: true } : {}) };
    let streamed = false;
    const result = await new Promise<unknown>((resolve, reject) => {
      pool.call(
        pattern!,
        value,
        {
          onItem: (item) => {
            streamed = true;
            io.stdout.write(`${toJson(item)}\n`);
          },
          onResult: resolve,
          onError: reject,
        },
        options,
      );
    });
    // a stream's final answer carries no value of its own
    if (!values.event && !(streamed && result === undefined)) io.stdout.write(`${toJson(result, values.compact || streamed ? undefined : 2)}\n`);
    return ExitCode.Ok;
  } finally {
    await pool.close();
  }
}
