import { RpcException } from '@nestjs/microservices';

/**
 * Fails a handler with a numeric code: `throw new OccamsErrnoException(22)`,
 * or with a message too: `new OccamsErrnoException(22, 'v must be >= 0')`.
 * Equivalent to `throw new RpcException({ errno: 22, message })`. Clients
 * see `RemoteErrnoError` with `.errno` and, from a nestjs-occams client,
 * `.message`; plain occams v1 peers get the errno alone (response flag 1).
 */
export class OccamsErrnoException extends RpcException {
  override readonly name = 'OccamsErrnoException';
  constructor(
    readonly errno: number,
    message?: string,
  ) {
    super(message === undefined ? { errno } : { errno, message });
  }
}
