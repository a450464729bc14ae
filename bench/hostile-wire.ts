/**
 * A raw occams connection for the hostile bench's attacker: frames written
 * as given (with the socket's backpressure: a write that fills the buffer
 * waits for `drain`), answers counted by kind, and whether it was the
 * server that ended it. HELLO is optional (`hello(features)`).
 */
import net from 'node:net';

import { ACTION_HELLO } from '../lib/protocol/extensions.js';
import { helloCodec } from '../lib/protocol/hello.js';
import { encodeRequest } from '../lib/protocol/request-frame.js';
import { ResponseDecoder } from '../lib/protocol/response-decoder.js';

/** What one attack did, summed over its connections. */
export interface AttackTally {
  /** request frames written whole (each CANCEL counts as one) */
  framesSent: number;
  bytesSent: number;
  /** connections opened */
  connections: number;
  /** connections the server ended (FIN or reset) while we still used them */
  closedByServer: number;
  connectFailed: number;
  /** answers by kind: ok, errno, user_error, rpc_* codes */
  answers: Record<string, number>;
  /** feature bits the server granted in HELLO answers, and how often */
  helloGranted: Record<string, number>;
  notes: string[];
}

export function newTally(): AttackTally {
  return { framesSent: 0, bytesSent: 0, connections: 0, closedByServer: 0, connectFailed: 0, answers: {}, helloGranted: {}, notes: [] };
}

export function note(tally: AttackTally, text: string): void {
  if (tally.notes.length < 8 && !tally.notes.includes(text)) tally.notes.push(text);
}

const CONNECT_TIMEOUT = 3000;
const HELLO_TIMEOUT = 3000;

/** How to end each connection still open (RawConn or not): the attacker ends them all when its window is over. */
const open = new Set<() => void>();

export class RawConn {
  /** Registers `destroy` to run at `destroyAll`; returns the function that unregisters it. */
  static track(destroy: () => void): () => void {
    open.add(destroy);
    return () => open.delete(destroy);
  }

  /** Ends every connection still open (the window is over: any wait on them resolves). */
  static destroyAll(): void {
    for (const destroy of [...open]) destroy();
    open.clear();
  }

  /** seq of the next request (HELLO takes 1) */
  nextSeq = 1;
  /** answers read on this connection */
  answered = 0;
  closed = false;
  private mine = false;
  private helloSeq = -1;
  private helloAnswer: ((bits: number | undefined) => void) | undefined;
  /** whoever waits in `until` (a send for drain, a wait for answers) */
  private wakers: (() => void)[] = [];
  private readonly decoder = new ResponseDecoder(
    {
      onResponse: (flag, seq, _msgLen, msg, blob) => this.onResponse(flag, seq, msg, blob),
    },
    64 * 1024 * 1024,
  );

  private constructor(
    readonly socket: net.Socket,
    private readonly tally: AttackTally,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      const err = this.decoder.push(chunk);
      if (err !== undefined) {
        note(tally, `unreadable answer: ${err.message}`);
        this.destroy();
      }
    });
    socket.on('error', () => {});
    const untrack = RawConn.track(() => this.destroy());
    socket.once('close', () => {
      untrack();
      this.closed = true;
      if (!this.mine) tally.closedByServer++;
      this.helloAnswer?.(undefined);
      this.poke();
    });
  }

  /** Connects; undefined when it could not (counted). */
  static open(port: number, tally: AttackTally): Promise<RawConn | undefined> {
    return new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      const timer = setTimeout(() => fail(), CONNECT_TIMEOUT);
      const fail = (): void => {
        clearTimeout(timer);
        tally.connectFailed++;
        socket.destroy();
        resolve(undefined);
      };
      socket.once('error', fail);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', fail);
        tally.connections++;
        resolve(new RawConn(socket, tally));
      });
    });
  }

  /** Sends HELLO offering `features` (codec msgpack); resolves with the bits granted, undefined when refused or closed. */
  hello(features: number): Promise<number | undefined> {
    const seq = this.nextSeq++;
    this.helloSeq = seq;
    const msg = helloCodec.encode({ v: 1, f: features, c: 'msgpack' });
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), HELLO_TIMEOUT);
      const done = (bits: number | undefined): void => {
        clearTimeout(timer);
        this.helloAnswer = undefined;
        const key = bits === undefined ? 'refused' : String(bits);
        this.tally.helloGranted[key] = (this.tally.helloGranted[key] ?? 0) + 1;
        resolve(bits);
      };
      this.helloAnswer = done;
      void this.send(encodeRequest({ action: ACTION_HELLO, seq, msg: Buffer.from(msg) }));
    });
  }

  /**
   * Writes `bytes` (holding `frames` frames; parts of one frame when an
   * array); waits while the socket's buffer is full. False once the
   * connection is closed.
   */
  async send(bytes: Buffer | Buffer[], frames = 1): Promise<boolean> {
    if (this.closed) return false;
    let flushed = true;
    if (Array.isArray(bytes)) {
      this.socket.cork();
      for (const part of bytes) {
        flushed = this.socket.write(part);
        this.tally.bytesSent += part.length;
      }
      this.socket.uncork();
    } else {
      flushed = this.socket.write(bytes);
      this.tally.bytesSent += bytes.length;
    }
    this.tally.framesSent += frames;
    if (!flushed && !this.closed) await this.until(() => this.socket.writableLength === 0 || this.closed, 'drain');
    return !this.closed;
  }

  /** Waits until `count` answers were read on this connection, it closed, or `ms` passed. */
  async answers(count: number, ms: number): Promise<void> {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      this.poke();
    }, ms);
    await this.until(() => this.answered >= count || this.closed || late);
    clearTimeout(timer);
  }

  /** Waits until the server ends the connection, or `ms` passed. */
  async closedWithin(ms: number): Promise<boolean> {
    await this.answers(Number.MAX_SAFE_INTEGER, ms);
    return this.closed;
  }

  destroy(): void {
    if (this.closed) return;
    this.mine = true;
    this.socket.destroy();
  }

  private onResponse(flag: number, seq: number, msg: Buffer, blob: Buffer): void {
    if (seq === this.helloSeq && this.helloAnswer !== undefined) {
      let bits: number | undefined;
      try {
        const answer = flag === 0 ? (helloCodec.decode(msg) as { f?: unknown }) : undefined;
        bits = typeof answer?.f === 'number' ? answer.f : undefined;
      } catch {
        bits = undefined;
      }
      return this.helloAnswer(bits);
    }
    this.answered++;
    const kind = flag === 0 || flag === 7 ? 'ok' : flag === 1 || flag === 6 ? 'errno' : flag === 2 ? errorBytes(blob) : `flag ${flag}`;
    this.tally.answers[kind] = (this.tally.answers[kind] ?? 0) + 1;
    this.poke();
  }

  private poke(): void {
    const wakers = this.wakers;
    if (wakers.length === 0) return;
    this.wakers = [];
    for (const wake of wakers) wake();
  }

  /** Resolves when `ready()` holds, checked on each answer, close, and `event` of the socket. */
  private async until(ready: () => boolean, event?: 'drain'): Promise<void> {
    const onEvent = (): void => this.poke();
    if (event !== undefined) this.socket.on(event, onEvent);
    try {
      while (!ready()) await new Promise<void>((r) => this.wakers.push(r));
    } finally {
      if (event !== undefined) this.socket.off(event, onEvent);
    }
  }
}

function errorBytes(blob: Buffer): string {
  const text = blob.subarray(0, 32).toString('latin1');
  return /^rpc_[a-z_]+$/.test(text) ? text : 'user_error';
}
