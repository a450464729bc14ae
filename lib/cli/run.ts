import { LIBRARY_VERSION } from '../stream/index.js';
import { benchCommand } from './bench-command.js';
import { callCommand } from './call-command.js';
import { describeCommand, listCommand } from './describe-command.js';
import { ExitCode, exitCodeOf, UsageError } from './exit-codes.js';
import { colours, describeFailure, type Streams } from './output.js';
import { pingCommand } from './ping-command.js';
import { streamCommand } from './stream-command.js';

export const HELP = `Usage: nestjs-occams COMMAND [ARGS] [options]

Talks to any occams v1 server (nestjs-occams, the Rust crate) from the shell.

Commands:
  call ADDRESS PATTERN [JSON]      one call; the result as JSON
  stream ADDRESS PATTERN [JSON]    a streamed result, one JSON line per item; Ctrl-C cancels it
  ping ADDRESS                     round-trip times, min/avg/max
  list ADDRESS                     the patterns the server answers (server reflection)
  describe ADDRESS [SERVICE]       the server's typed services, features and version (reflection)
  bench ADDRESS PATTERN [JSON]     a load test: throughput, latency percentiles, histogram

ADDRESS is host:port, [v6]:port or unix:/path, or several comma-separated
for failover. \`nestjs-occams COMMAND --help\` tells a command's options
(TLS and mutual TLS: --tls, --ca, --cert, --key, --servername).

Results go to stdout (JSON), diagnostics to stderr. Exit codes: 0 ok,
1 the server answered an error, 2 bad command line, 3 unreachable,
4 timeout, 5 no reflection on the server, 130 interrupted.
`;

type Command = (args: string[], io: Streams, interrupted: AbortSignal) => Promise<ExitCode>;

const COMMANDS: Record<string, Command> = {
  call: callCommand,
  stream: streamCommand,
  ping: pingCommand,
  list: listCommand,
  describe: describeCommand,
  bench: benchCommand,
};

/** Commands that stop cleanly on the first Ctrl-C; the others exit at once. */
const STOPPABLE = new Set(['stream', 'ping', 'bench']);

/**
 * Runs one command line; resolves with the exit code. The first SIGINT
 * (Ctrl-C) asks stream, ping and bench to stop (a stream is cancelled on
 * the server, ping and bench report what they measured); a second one, or
 * the first during another command, exits at once.
 */
export async function run(argv: string[], io: Streams): Promise<ExitCode> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(HELP);
    return name === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(`${LIBRARY_VERSION}\n`);
    return ExitCode.Ok;
  }
  const red = colours(io.stderr);
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr.write(`${red(31, 'error')}: unknown command "${name}"\n\n${HELP}`);
    return ExitCode.Usage;
  }
  const interrupt = new AbortController();
  const onSigint = (): void => {
    if (interrupt.signal.aborted || !STOPPABLE.has(name)) process.exit(ExitCode.Interrupted);
    interrupt.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await command(args, io, interrupt.signal);
  } catch (err) {
    const code = exitCodeOf(err);
    const label = code === ExitCode.Usage ? 'usage' : 'error';
    io.stderr.write(`${red(31, label)}: ${err instanceof UsageError ? err.message : describeFailure(err)}\n`);
    return code;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
