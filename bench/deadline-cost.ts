/**
 * What the deadline every call now carries (issue 34) costs per call, on
 * each side, without sockets or a second process in the way:
 *
 * - write-plain: RequestWriter.request of a small call without options to
 *   a peer without FEATURE_DEADLINE (the frame every call went out in before);
 * - write-deadline: the same call to a FEATURE_DEADLINE peer: the clock
 *   read, `{d}` written by hand into the in-place frame;
 * - write-encoded: the same call with a per-call `deadline` option and
 *   metadata-free header encoded with msgpack (how a header went out
 *   before: an object and an encode per call, msg encoded apart);
 * - read-plain: the server's decode of the call's msg;
 * - read-deadline: `{d}` read by hand, then the msg decoded;
 * - read-general: the header split and decoded with msgpack (splitExtHeader,
 *   the general path), then the msg decoded.
 *
 * Each subject runs alone in a fresh process, `--procs` times, interleaved;
 * each process reports its best of 4 rounds, ns per call. Usage:
 *   node dist/bench/deadline-cost.js [--procs 5] [--n 1000000] [--out bench/results/deadline-cost.md]
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { Call, CallKind, IGNORE } from '../lib/client/call.js';
import { RequestWriter } from '../lib/client/request-writer.js';
import { MsgpackCodec } from '../lib/codec/msgpack-codec.js';
import { systemClock } from '../lib/core/clock.js';
import { FrameWriter } from '../lib/core/frame-writer.js';
import { ALL_FEATURES, FEATURE_DEADLINE, readDeadlineHeader } from '../lib/protocol/extensions.js';
import { helloCodec } from '../lib/protocol/hello.js';
import { splitExtHeader } from '../lib/server/ext-header.js';
import { inFreshProcesses, minMedianRows } from './fresh-processes.js';
import { SMALL } from './transport.js';

const SUBJECTS = ['write-plain', 'write-deadline', 'write-encoded', 'read-plain', 'read-deadline', 'read-general'] as const;
type Subject = (typeof SUBJECTS)[number];
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const MAX_WEIGHT = 1 << 20;

/** `header` (msgpack bytes) as a request msg starts, then the msg. */
function withHeader(header: Uint8Array, msg: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  return Buffer.concat([len, header, msg]);
}

function subjectFn(subject: Subject): () => unknown {
  const codec = new MsgpackCodec();
  // a socket that takes every write at once: the arenas come back at once, as on an idle loopback
  const sink = {
    destroyed: false,
    writableEnded: false,
    write(_chunk: Uint8Array, cb: () => void): boolean {
      cb();
      return true;
    },
  } as unknown as Writable;
  const writer = new FrameWriter(sink);
  const out = new RequestWriter(writer, codec, 7);
  const owner = { cancel() {}, handedOff: () => false };
  const plain = new Call(owner, CallKind.User, 'echo', SMALL, IGNORE, undefined);
  plain.expiresAt = systemClock.now() + 3_600_000;
  const withOption = new Call(owner, CallKind.User, 'echo', SMALL, IGNORE, { deadline: plain.expiresAt });
  withOption.expiresAt = plain.expiresAt;
  const msg = Buffer.from(codec.encode(SMALL));
  // as a server reads them: views into a larger read buffer
  const read = (b: Buffer) => Buffer.concat([Buffer.alloc(64), b]).subarray(64);
  const plainMsg = read(msg);
  const byHand = read(withHeader(Buffer.from([0x81, 0xa1, 0x64, 0xcd, 0x4e, 0x20]), msg)); // {d: 20000}
  const encoded = read(withHeader(helloCodec.encode({ d: 20_000 }), msg));
  let seq = 1;
  switch (subject) {
    case 'write-plain':
      return () => out.request(plain, seq++, ALL_FEATURES & ~FEATURE_DEADLINE, systemClock.now());
    case 'write-deadline':
      return () => out.request(plain, seq++, ALL_FEATURES, systemClock.now());
    case 'write-encoded':
      return () => out.request(withOption, seq++, ALL_FEATURES, systemClock.now());
    case 'read-plain':
      return () => codec.decode(plainMsg, MAX_WEIGHT);
    case 'read-deadline':
      return () => {
        const left = readDeadlineHeader(byHand);
        return left >= 0 ? codec.decode(byHand.subarray(4 + byHand[0]!), MAX_WEIGHT) : undefined;
      };
    case 'read-general':
      return () => {
        const split = splitExtHeader(encoded, MAX_WEIGHT)!;
        return [split.header, codec.decode(split.msg, MAX_WEIGHT)];
      };
  }
}

/** One process: the best of 4 rounds, ns per call. */
function measure(subject: Subject, n: number): number {
  const fn = subjectFn(subject);
  for (let i = 0; i < 200_000; i++) fn();
  let best = Infinity;
  for (let r = 0; r < 4; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / n);
  }
  return best;
}

const child = arg('subject', '');
if (child) {
  process.stdout.write(String(measure(child as Subject, Number(arg('n', '1000000')))));
  process.exit(0); // the sink's pending writes need not finish
} else {
  const procs = Number(arg('procs', '5'));
  const n = arg('n', '1000000');
  const self = fileURLToPath(import.meta.url);
  const rows = minMedianRows(inFreshProcesses(self, SUBJECTS, procs, ['--n', n]), 0);
  const report = [
    `Run ${new Date().toISOString()} on ${os.cpus().length} x ${os.cpus()[0]?.model}, Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)}: a small call (the bench's small payload), ${procs} processes per subject, interleaved, each the best of 4 rounds of ${n}.`,
    '',
    '| subject | min ns/call | median ns/call |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  console.log(report);
  const file = arg('out', '');
  if (file) fs.writeFileSync(file, report);
}
