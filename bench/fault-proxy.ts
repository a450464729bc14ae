/**
 * A TCP proxy in front of one server that misbehaves on command, as a
 * sick network or host does: `delay` (ms each way), `throttle` (bytes per
 * second each way), `slice` (every write cut in 1-7 byte pieces, one per
 * turn of the loop), `blackhole` (holds every byte both ways, keeps the
 * sockets open), `reset` (RST on every connection now and on new ones).
 * `none` forwards as is (what was held goes on).
 */
import net from 'node:net';

export type Fault = 'none' | 'delay' | 'throttle' | 'slice' | 'blackhole' | 'reset';

/** One direction of one proxied connection: chunks in order, sent per the fault. */
class Pipe {
  private readonly held: Buffer[] = [];
  private busy = false;
  constructor(
    private readonly proxy: FaultProxy,
    private readonly to: net.Socket,
  ) {}

  push(chunk: Buffer): void {
    this.held.push(chunk);
    if (!this.busy) this.next();
  }

  /** Sends what is held, as the fault allows; called again when it changes. */
  next(): void {
    if (this.held.length === 0 || this.to.destroyed) return void (this.busy = false);
    const fault = this.proxy.fault;
    if (fault === 'blackhole') return void (this.busy = false);
    this.busy = true;
    const chunk = this.held.shift()!;
    switch (fault) {
      case 'delay':
        return void setTimeout(() => (this.to.write(chunk), this.next()), this.proxy.delayMs);
      case 'throttle': {
        const n = Math.min(chunk.length, Math.max(1, Math.floor(this.proxy.bytesPerSecond / 100)));
        if (n < chunk.length) this.held.unshift(chunk.subarray(n));
        this.to.write(chunk.subarray(0, n));
        return void setTimeout(() => this.next(), Math.max(1, Math.round((n * 1000) / this.proxy.bytesPerSecond)));
      }
      case 'slice': {
        const n = Math.min(chunk.length, 1 + Math.floor(Math.random() * 7));
        if (n < chunk.length) this.held.unshift(chunk.subarray(n));
        this.to.write(chunk.subarray(0, n));
        if (this.proxy.slicePaceMs > 0) return void setTimeout(() => this.next(), this.proxy.slicePaceMs);
        return void setImmediate(() => this.next());
      }
      default:
        this.to.write(chunk);
        return this.next();
    }
  }
}

export class FaultProxy {
  fault: Fault = 'none';
  delayMs = 200;
  bytesPerSecond = 64 * 1024;
  /** ms between two slices of one pipe; 0: the next turn of the loop (setImmediate: the proxy spins while anything is held) */
  slicePaceMs = 0;
  private readonly server: net.Server;
  private readonly pipes = new Set<Pipe>();
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly upstreamPort: number) {
    this.server = net.createServer((client) => this.accept(client));
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port)));
  }

  set(fault: Fault): void {
    this.fault = fault;
    if (fault === 'reset') for (const s of this.sockets) s.resetAndDestroy();
    for (const p of this.pipes) p.next();
  }

  private accept(client: net.Socket): void {
    if (this.fault === 'reset') return void client.resetAndDestroy();
    const upstream = net.connect(this.upstreamPort, '127.0.0.1');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const up = new Pipe(this, upstream);
    const down = new Pipe(this, client);
    this.pipes.add(up).add(down);
    this.sockets.add(client).add(upstream);
    client.on('data', (c: Buffer) => up.push(c));
    upstream.on('data', (c: Buffer) => down.push(c));
    const end = () => {
      this.pipes.delete(up);
      this.pipes.delete(down);
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  }
}
