import { RpcException } from '@nestjs/microservices';

/**
 * Fails a handler with a numeric code, sent in the occams v1 errno form
 * (response flag 1): `throw new OccamsErrnoException(22)`. Equivalent to
 * `throw new RpcException({ errno: 22 })`. Clients see `RemoteErrnoError`
 * with `.errno`.
 */
export class OccamsErrnoException extends RpcException {
  constructor(
    readonly errno: number,
    message?: string,
  ) {
    super(message === undefined ? { errno } : { errno, message });
  }
}
