/**
 * The well-behaved client of the hostile bench: one ClientStream with
 * default options calling `echo` with a small object, open loop at a fixed
 * rate. Each call's latency runs from when it was due (not when it went
 * out), so a victim held up by its own loop counts that too. A connection
 * the server (or the heartbeat) ends is dialled again at once; calls due
 * meanwhile fail as `not_connected`.
 */
import { ClientStream, type OccamsError, type ResponseHandler } from '../lib/index.js';

export interface VictimFigures {
  issued: number;
  ok: number;
  /** answered with something else than what was sent */
  wrong: number;
  failed: Record<string, number>;
  failedTotal: number;
  /** calls not settled when the bench stopped waiting */
  unsettled: number;
  reconnects: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Settles, after the window, when calls still owed have taken this long. */
const SETTLE_LIMIT = 25_000;
const TICK = 2;

class EchoCall implements ResponseHandler {
  constructor(
    private readonly run: Run,
    private readonly id: number,
    private readonly due: number,
  ) {}

  onResult(value: unknown): void {
    const run = this.run;
    if ((value as { id?: unknown } | undefined)?.id === this.id) {
      run.latencies.push(performance.now() - this.due);
    } else {
      run.wrong++;
    }
    run.settled++;
    run.wake();
  }

  onError(err: OccamsError): void {
    this.run.fail(err.code);
  }
}

class Run {
  latencies: number[] = [];
  wrong = 0;
  settled = 0;
  failed: Record<string, number> = {};
  private waiter: (() => void) | undefined;

  fail(code: string): void {
    this.failed[code] = (this.failed[code] ?? 0) + 1;
    this.settled++;
    this.wake();
  }

  wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  next(): Promise<void> {
    return new Promise((r) => (this.waiter = r));
  }
}

export class Victim {
  private client: ClientStream | undefined;
  private dialling: Promise<void> | undefined;
  private reconnects = 0;

  constructor(
    private port: number,
    private readonly rate: number,
  ) {}

  /** Connects (again); a new port when the server was restarted. */
  async connect(port = this.port): Promise<void> {
    if (port !== this.port) this.client?.destroy();
    this.port = port;
    if (this.client?.state === 'ready') return;
    this.dialling ??= ClientStream.connect(`127.0.0.1:${this.port}`)
      .then((c) => void (this.client = c))
      .catch(() => undefined)
      .finally(() => (this.dialling = undefined));
    await this.dialling;
  }

  /** Calls at `rate` for `ms`, then waits (bounded) until every call has settled. */
  async window(ms: number): Promise<VictimFigures> {
    const run = new Run();
    const total = Math.round((ms * this.rate) / 1000);
    const gap = 1000 / this.rate;
    const reconnectsBefore = this.reconnects;
    let issued = 0;
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - t0) * this.rate) / 1000) + 1);
        for (; issued < due; issued++) this.issue(run, issued, t0 + issued * gap);
        if (issued >= total) {
          clearInterval(timer);
          resolve();
        }
      }, TICK);
    });
    const until = Date.now() + SETTLE_LIMIT;
    while (run.settled < issued && Date.now() < until) {
      const timer = setTimeout(() => run.wake(), 200);
      await run.next();
      clearTimeout(timer);
    }
    const sorted = Float64Array.from(run.latencies).sort();
    const at = (q: number) => (sorted.length === 0 ? NaN : round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!));
    const failedTotal = Object.values(run.failed).reduce((a, b) => a + b, 0);
    return {
      issued,
      ok: run.latencies.length,
      wrong: run.wrong,
      failed: run.failed,
      failedTotal,
      unsettled: issued - run.settled,
      reconnects: this.reconnects - reconnectsBefore,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      maxMs: sorted.length === 0 ? NaN : round(sorted[sorted.length - 1]!),
    };
  }

  destroy(): void {
    this.client?.destroy();
  }

  private issue(run: Run, n: number, due: number): void {
    const client = this.client;
    if (client === undefined || client.state !== 'ready') {
      run.fail('not_connected');
      if (this.dialling === undefined) {
        this.reconnects++;
        void this.connect();
      }
      return;
    }
    const id = n + 1;
    client.call('echo', { id, user: 'user-4711', items: [1, 2, 3], note: 'a small realistic payload', at: 1_700_000_000_000 + id }, new EchoCall(run, id, due));
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
