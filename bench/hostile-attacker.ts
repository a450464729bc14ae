/**
 * The attacker of the hostile bench: `node hostile-attacker.js <attack> <port> <windowMs>`.
 * Builds the attack's payloads, says 'ready', runs it from 'go' until the
 * window is over or 'stop' arrives (then ends every connection it holds),
 * and answers with its tally ({ type: 'result', tally }). A hard stop 3 s
 * past the window sends what it has and exits, whatever the attack awaits.
 */
import { type AttackContext, ATTACKS } from './hostile-attacks.js';
import { newTally, note, RawConn } from './hostile-wire.js';

const [name, portArg, windowArg] = process.argv.slice(2);
const attack = ATTACKS.find((a) => a.name === name);
if (attack === undefined) throw new Error(`no attack named ${name}`);
const port = Number(portArg);
const windowMs = Number(windowArg);

const run = attack.prepare();
const tally = newTally();
let over = false;
let reported = false;

function report(): void {
  if (reported) return;
  reported = true;
  process.send!({ type: 'result', tally }, () => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}

function end(): void {
  if (over) return;
  over = true;
  RawConn.destroyAll();
}

process.on('message', (msg: string) => {
  if (msg === 'stop') end();
  if (msg !== 'go') return;
  const ctx: AttackContext = { port, tally, over: () => over };
  setTimeout(end, windowMs);
  setTimeout(() => {
    note(tally, 'hard stop: the attack did not wind down within 3 s of the window');
    report();
  }, windowMs + 3000).unref();
  run(ctx).then(
    () => {
      end();
      report();
    },
    (err: unknown) => {
      note(tally, `attack failed: ${(err as Error)?.message ?? String(err)}`);
      end();
      report();
    },
  );
});
process.once('disconnect', () => process.exit(1));
process.send!({ type: 'ready' });
