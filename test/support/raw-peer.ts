import net from 'node:net';

import { ACTION_HELLO, ALL_FEATURES } from '../../lib/protocol/extensions.js';
import { helloCodec, helloOffer } from '../../lib/protocol/hello.js';
import { encodeRequest, type EncodeRequestInput } from '../../lib/protocol/request-frame.js';
import { ResponseDecoder } from '../../lib/protocol/response-decoder.js';
import { sleep } from './servers.js';

export interface RawResponse {
  flag: number;
  seq: number;
  msgLen: number;
  msg: Buffer;
  blob: Buffer;
}

/**
 * A peer speaking raw request frames to a server and collecting whatever
 * comes back, as a hostile or careless client would: no window, no
 * checks, its own seqs.
 */
export class RawPeer {
  readonly responses: RawResponse[] = [];
  /** every byte received, in order */
  received = 0;
  readonly closed: Promise<void>;
  ended = false;
  isClosed = false;
  private readonly decoder = new ResponseDecoder({
    onResponse: (flag, seq, msgLen, msg, blob) => this.responses.push({ flag, seq, msgLen, msg: Buffer.from(msg), blob: Buffer.from(blob) }),
  });

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      this.decoder.push(chunk);
    });
    socket.on('error', () => {});
    socket.on('end', () => (this.ended = true));
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        resolve();
      }),
    );
  }

  /** `allowHalfOpen`: keeps sending after the server's FIN, as a careless or hostile peer may. */
  static async connect(port: number, host = '127.0.0.1', allowHalfOpen = false): Promise<RawPeer> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ port, host, allowHalfOpen }, () => resolve(s));
      s.once('error', reject);
    });
    return new RawPeer(socket);
  }

  /** Connects and says HELLO with `features`; resolves once answered. */
  static async hello(port: number, features = ALL_FEATURES, allowHalfOpen = false): Promise<RawPeer> {
    const peer = await RawPeer.connect(port, '127.0.0.1', allowHalfOpen);
    peer.send({ action: ACTION_HELLO, seq: 1, msg: helloCodec.encode(helloOffer('msgpack', features)) });
    await peer.waitForResponses(1);
    peer.responses.length = 0;
    return peer;
  }

  send(...frames: (EncodeRequestInput | Buffer)[]): void {
    this.socket.write(Buffer.concat(frames.map((f) => (Buffer.isBuffer(f) ? f : encodeRequest(f)))));
  }

  /** Waits (at most `ms`) for `count` responses in all; throws past that. */
  async waitForResponses(count: number, ms = 5000): Promise<RawResponse[]> {
    const until = Date.now() + ms;
    while (this.responses.length < count) {
      if (Date.now() > until) throw new Error(`${this.responses.length} of ${count} responses within ${ms} ms`);
      if (this.isClosed) throw new Error(`closed after ${this.responses.length} of ${count} responses`);
      await sleep(5);
    }
    return this.responses;
  }

  /** Resolves true once the server closed the connection, false after `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), sleep(ms).then(() => false)]);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
