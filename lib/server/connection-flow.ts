import type { Socket } from 'node:net';

import { KeyBudget } from '../codec/key-budget.js';
import type { TimerHandle } from '../core/clock.js';
import type { OccamsError } from '../errors.js';
import type { RequestDecoder } from '../protocol/request-decoder.js';
import { readOn } from '../transport/socket-reads.js';
import type { ReadTurns } from './read-turns.js';
import type { RequestTable } from './request-table.js';
import type { ServerCounters } from './server-counters.js';
import type { NormalizedRpcServerOptions } from './server-options.js';
import { WriteStallWatch } from './write-stall.js';

/**
 * ms one connection may keep the event loop reading its frames in one turn
 * before the others get theirs: libuv reads up to 32 x 64 KiB from a
 * socket per wakeup, thousands of small frames, and a peer pipelining as
 * fast as it can would otherwise hold every other connection's reads and
 * writes for a hundred ms and more (bench/hostile.ts, call + CANCEL churn).
 */
export const READ_SLICE_MS = 2;

/**
 * A connection whose own reading (decode and dispatch of its frames) took
 * longer than this in one turn, some frame of it costly (a request near
 * maxRequestWeight, a 1 MiB value), sits out afterwards for as long as that
 * took (at most MAX_READ_PENALTY_MS) if other connections are reading: it
 * gets at most about half of the loop while others are waiting, however
 * costly each of its requests is. Alone, it reads on: sitting out would
 * only leave the loop idle (ReadTurns).
 */
export const READ_OVERSTAY_MS = 8;
export const MAX_READ_PENALTY_MS = 1_000;
/** Others count as reading when one of them began a turn within this many ms. */
export const CONTENDED_MS = 1_000;

/** A stream waiting for the socket to drain (OutboundStream). */
export interface Resumable {
  resume(): void;
}

/** What ConnectionFlow needs of its connection. */
export interface FlowPort {
  /** dispatches held requests while there is room */
  pumpHeld(): void;
  /** closes the connection at once, logged with `reason` */
  kill(reason: string, cause?: OccamsError): void;
  /** the peer broke the protocol: reading stops, what is owed goes out, then the connection closes (logged with `reason`) */
  violated(reason: string, cause?: OccamsError): void;
  /** the bytes our FrameWriter has handed to the socket so far */
  flushed(): number;
  /** false once the connection is closed */
  isOpen(): boolean;
}

/**
 * Flow control of one server connection, both ways.
 *
 * Writes: past `highWaterMark` the connection is not `writable`: new
 * requests are held, streams wait (`waitForRoom`) until 'drain'; a peer
 * that takes none of our bytes for `writeTimeout` is cut (WriteStallWatch:
 * progress, not volume).
 *
 * Reads: never stop for the in-flight cap (pings, CANCELs and a FIN must be
 * seen while handlers are stuck); they pause only while writes are backed
 * up AND the held queue is full: a peer that neither reads nor stops
 * sending. While writes are backed up, "full" is `maxQueuedPerConnection`
 * requests or `highWaterMark` bytes of them (not `maxQueuedBytes`): what
 * waits to run is bounded like what waits to be written, and the rest
 * stays unread in the socket. A held request is decoded and lives until
 * the socket drains, through young-generation GCs: holding up to 32 MiB of
 * 16 KiB values, the server promoted 25-100 MB in 2 s at 16 KiB x 1024,
 * the bare reference under 1 MB (bench/results/gc-16k-x1024.md).
 * `readTimeout` cuts a peer that stalls mid-frame, unless we are the ones
 * not reading. And reads pause for the rest of the event-loop turn
 * once this connection has been read for READ_SLICE_MS in it (at a frame
 * boundary; `reading` / `spent`), so that one busy peer takes turns with
 * the others instead of holding the loop.
 */
export class ConnectionFlow {
  private writeBlocked = false;
  private readPaused = false;
  /** reading stopped for good (`stopReading`) */
  private stopped = false;
  /** reading paused until the next turn: this one's slice is used up */
  private yielded = false;
  /** clock time reading began in this turn; -1 between turns */
  private turnStart = -1;
  /** ms this connection's own reading took in this turn */
  private busy = 0;
  /** reading paused after a turn that overstayed (READ_OVERSTAY_MS) */
  private penalized = false;
  private penaltyTimer: TimerHandle | undefined = undefined;
  /** ReadTurns.turns when this connection began to sit out an overstay */
  private turnsAtRest = -1;
  /** the budget of new property names (newKeyRate) */
  private readonly keyBudget: KeyBudget | undefined;
  private readonly endTurnBound = (): void => this.endTurn();
  private readonly endPenaltyBound = (): void => this.endPenalty();
  private readonly restIfAloneBound = (): void => this.restIfAlone();
  /** streams waiting for the socket to drain */
  private readonly waiting = new Set<Resumable>();
  private readonly stall: WriteStallWatch;
  /** bytes of held requests that, with writes backed up, stop reading: highWaterMark, or maxQueuedBytes if lower */
  private readonly heldWhileBlocked: number;

  constructor(
    private readonly socket: Socket,
    private readonly decoder: RequestDecoder,
    private readonly requests: RequestTable,
    private readonly options: NormalizedRpcServerOptions,
    private readonly port: FlowPort,
    private readonly turns: ReadTurns,
    private readonly counters: ServerCounters,
  ) {
    this.stall = new WriteStallWatch(
      options.clock,
      options.writeTimeout,
      () => port.flushed() - socket.writableLength,
      () => port.kill(`write timeout (write stall): peer read none of our bytes for ${options.writeTimeout} ms (${socket.writableLength} bytes waiting)`),
    );
    this.heldWhileBlocked = Math.min(options.highWaterMark, options.maxQueuedBytes);
    this.keyBudget = options.newKeyRate === Infinity ? undefined : new KeyBudget(options.newKeyRate, options.clock.now());
  }

  /**
   * The peer made the server learn `n` more new property names (record
   * shapes, Codec.newKeys; plain maps, Codec.keyCensus): beyond newKeyRate,
   * reading stops at this frame and waits, once the turn is over, until
   * they are paid for (KeyBudget), in pauses of at most MAX_READ_PENALTY_MS
   * until then. Returns that wait in ms (0: none).
   */
  keysLearned(n: number): number {
    if (this.keyBudget === undefined) return 0;
    const wait = this.keyBudget.spend(n, this.options.clock.now());
    if (wait === 0) return 0;
    if (!this.yielded) {
      // no further frame of this chunk is read: the wait starts when the turn ends
      this.yielded = true;
      this.update();
    }
    return wait;
  }

  /** False while writes are backed up past highWaterMark. */
  get writable(): boolean {
    return !this.writeBlocked;
  }

  /** A stream waits for the socket to drain. */
  waitForRoom(out: Resumable): void {
    this.waiting.add(out);
  }

  /** `socket.write` returned false. */
  backpressure(): void {
    if (this.writeBlocked || this.socket.writableLength < this.options.highWaterMark) return;
    this.writeBlocked = true;
    this.stall.start();
    this.update();
  }

  /** The socket drained: held requests run, waiting streams resume. */
  drained(): void {
    if (!this.writeBlocked) return;
    this.writeBlocked = false;
    this.stall.stop();
    if (this.requests.heldCount !== 0) this.port.pumpHeld();
    else this.update();
    if (this.waiting.size === 0) return;
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const out of waiting) {
      if (this.writable) out.resume();
      else this.waiting.add(out);
    }
  }

  /** Pauses or resumes reading as the rule above says. */
  update(): void {
    if (!this.port.isOpen() || this.stopped) return;
    const { requests, options } = this;
    const full = requests.heldCount >= options.maxQueuedPerConnection || requests.heldBytes >= this.heldWhileBlocked;
    const shouldPause = (this.writeBlocked && full) || this.yielded || this.penalized;
    if (shouldPause === this.readPaused) return;
    this.readPaused = shouldPause;
    if (shouldPause) {
      this.decoder.pause(); // stops even in the middle of a chunk
      this.socket.pause();
      return;
    }
    const err = this.decoder.resume();
    if (err !== undefined) return this.port.violated(`protocol violation: ${err.message}`, err);
    if (!this.decoder.isPaused) this.socket.resume();
    else if (this.decoder.buffered === 0) readOn(this.socket); // paused again holding nothing: a FIN is still seen
  }

  /**
   * The peer sent nothing for `readTimeout` with part of a frame buffered:
   * it stalled mid-frame. Not while our own reading is paused (the bytes
   * buffered then are frames we stopped at; the peer does not read its
   * answers, and `writeTimeout` is the one to cut it, with that reason).
   */
  readTimeout(): void {
    if (this.readPaused || this.decoder.isPaused || this.writeBlocked) return;
    const buffered = this.decoder.buffered;
    if (buffered > 0) this.port.kill(`read timeout: peer sent ${buffered} bytes of an unfinished frame, then nothing for ${this.options.readTimeout} ms`);
  }

  /** Bytes arrived at `now`: this turn's reading starts now, unless it already has. */
  reading(now: number): void {
    if (this.turnStart >= 0) return;
    this.turnStart = now;
    this.turns.began(this, now);
    setImmediate(this.endTurnBound);
  }

  /** Frames were read up to `now`: past this turn's slice, reading pauses at the next frame boundary until the next turn. */
  spent(now: number): void {
    if (this.yielded || this.turnStart < 0 || now - this.turnStart < READ_SLICE_MS) return;
    this.yielded = true;
    this.update();
  }

  /** Reading of this connection's bytes ran from `start` to `end` (a chunk, or what a resume read). */
  worked(start: number, end: number): void {
    this.busy += end - start;
  }

  /**
   * The turn is over: a connection that overstayed while others were
   * reading sits out for as long as it took, one that learned new keys
   * beyond its budget until they are paid for; one that yielded reads on,
   * in a turn of its own.
   */
  private endTurn(): void {
    this.turnStart = -1;
    if (!this.port.isOpen()) return;
    // the clock is read only when the turn overstayed (every turn of a connection at 1 call in flight ends here)
    const overstayed = this.busy > READ_OVERSTAY_MS && this.turns.othersSince(this, this.options.clock.now() - CONTENDED_MS) ? this.busy : 0;
    const debt = this.keyDebt();
    this.busy = 0;
    if ((overstayed > 0 || debt > 0) && !this.stopped) {
      this.yielded = false;
      this.penalized = true;
      this.penaltyTimer = this.options.clock.setTimeout(this.endPenaltyBound, Math.min(Math.max(overstayed, debt), MAX_READ_PENALTY_MS));
      if (overstayed > 0) this.counters.satOut++;
      if (debt === 0) {
        // the others may have gone quiet since: see in the next turn of the loop whether anyone else read
        this.turnsAtRest = this.turns.turns;
        setImmediate(this.restIfAloneBound);
      }
      this.update();
      return;
    }
    if (!this.yielded) return;
    this.yielded = false;
    this.resumeTurn();
  }

  /** Sitting out an overstay, and a whole turn of the loop went by with nobody else reading: the loop is idle, read on. */
  private restIfAlone(): void {
    const at = this.turnsAtRest;
    this.turnsAtRest = -1;
    if (!this.penalized || this.stopped || at !== this.turns.turns) return;
    this.options.clock.clear(this.penaltyTimer);
    this.endPenalty();
  }

  private endPenalty(): void {
    this.penaltyTimer = undefined;
    const debt = this.keyDebt();
    if (debt > 0 && !this.stopped) {
      // names still unpaid for (more than one pause's worth): wait on
      this.penaltyTimer = this.options.clock.setTimeout(this.endPenaltyBound, Math.min(debt, MAX_READ_PENALTY_MS));
      return;
    }
    this.penalized = false;
    this.resumeTurn();
  }

  /** ms until the new names taken are paid for (KeyBudget); 0 when they are. */
  private keyDebt(): number {
    const budget = this.keyBudget;
    return budget === undefined || !budget.owing ? 0 : budget.debt(this.options.clock.now());
  }

  /** Reads on (what waited first), in a turn of its own, timed like a chunk. */
  private resumeTurn(): void {
    if (!this.port.isOpen()) return; // closed meanwhile: it reads nothing more (and ReadTurns has forgotten it)
    const clock = this.options.clock;
    const start = clock.now();
    this.reading(start);
    this.update();
    this.worked(start, clock.now());
  }

  /** Reads nothing more, even the rest of a chunk being decoded (the peer broke the protocol). */
  stopReading(): void {
    this.stopped = true;
    this.readPaused = true;
    this.decoder.pause();
    this.socket.pause();
  }

  stop(): void {
    this.options.clock.clear(this.penaltyTimer);
    this.penaltyTimer = undefined;
    this.turns.forget(this);
    this.stall.stop();
    this.waiting.clear();
  }
}
