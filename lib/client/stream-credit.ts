import type { Codec } from '../codec/codec.js';
import { DecodeError } from '../errors.js';
import { DEFAULT_STREAM_CREDIT } from '../protocol/extensions.js';
import { type Call, rethrow } from './call.js';
import type { CallWindow } from './call-window.js';
import type { RequestWriter } from './request-writer.js';
import { decodeValue } from './wire.js';

/** Items taken from a stream before its credit is renewed (half the server's default window). */
export const AUTO_GRANT = DEFAULT_STREAM_CREDIT / 2;

/**
 * The client's half of stream flow control (FEATURE_CREDIT): a stream whose
 * consumer paces it (an async iterator, through its StreamFlow) grants as it
 * takes items; any other stream's credit is renewed as items arrive, every
 * AUTO_GRANT items. Either way a stream is alive while it moves: its timeout
 * restarts with each item and each grant.
 */
export class StreamCredit {
  constructor(
    private readonly window: CallWindow,
    private readonly out: RequestWriter,
    private readonly defaultTimeout: number,
    private readonly codec: Codec,
  ) {}

  /**
   * An item of `call` arrived (`credit`: the server speaks FEATURE_CREDIT):
   * decoded and handed to the call's handler; the DecodeError when it
   * cannot be decoded (the caller fails the call).
   */
  item(call: Call, msg: Buffer, credit: boolean): DecodeError | undefined {
    const value = msg.length === 0 ? undefined : decodeValue(this.codec, msg, 'stream item');
    if (value instanceof DecodeError) return value;
    this.window.arm(call, call.options?.timeout ?? this.defaultTimeout);
    if (credit && call.options?.flow === undefined && ++call.consumed >= AUTO_GRANT) {
      this.out.credit(call.seq, call.consumed);
      call.consumed = 0;
    }
    try {
      call.handler.onItem?.(value);
    } catch (err) {
      rethrow(err);
    }
    return undefined;
  }

  /** The consumer of the stream sent as `seq` grants `n` more items. */
  grant(seq: number, n: number): void {
    const call = this.window.pending.get(seq);
    if (call === undefined || n <= 0) return;
    this.window.arm(call, call.options?.timeout ?? this.defaultTimeout);
    this.out.credit(seq, n);
  }
}
