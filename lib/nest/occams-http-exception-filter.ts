import { type ArgumentsHost, Catch, type ExceptionFilter, HttpStatus, Optional } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { type Observable, throwError } from 'rxjs';

import { ErrorCode, OccamsError, RemoteErrnoError, RemoteError } from '../errors.js';
import { DeclaredRemoteError } from '../service/index.js';

/**
 * The HTTP status a gateway answers with when a call fails with `err`:
 *
 * | code                                         | status                      |
 * |----------------------------------------------|-----------------------------|
 * | user_error, user_errno (the handler refused) | 422 Unprocessable Entity    |
 * | rpc_method_notfound, rpc_service_notfound    | 501 Not Implemented         |
 * | rpc_unreachable, rpc_overloaded, rpc_queue_full | 503 Service Unavailable  |
 * | rpc_timeout                                  | 504 Gateway Timeout         |
 * | anything else (io, internal, decode, ...)    | 502 Bad Gateway             |
 *
 * User errors are 422, not 400, so that a caller can tell the service's
 * refusal from the gateway's own 400s (its pipes and validation).
 */
export function occamsHttpStatus(err: OccamsError): number {
  switch (err.code) {
    case ErrorCode.UserError:
    case ErrorCode.UserErrno:
      return HttpStatus.UNPROCESSABLE_ENTITY;
    case ErrorCode.MethodNotFound:
    case ErrorCode.ServiceNotFound:
      return HttpStatus.NOT_IMPLEMENTED;
    case ErrorCode.Unreachable:
    case ErrorCode.Overloaded:
    case ErrorCode.QueueFull:
      return HttpStatus.SERVICE_UNAVAILABLE;
    case ErrorCode.Timeout:
      return HttpStatus.GATEWAY_TIMEOUT;
    default:
      return HttpStatus.BAD_GATEWAY;
  }
}

/** The JSON body: `{ statusCode, code, message }`, plus `errno` or the handler's error value (`details`). */
export interface OccamsHttpErrorBody {
  statusCode: number;
  code: string;
  message: string;
  errno?: number;
  details?: unknown;
}

/**
 * For HTTP gateways in front of occams services: answers OccamsErrors with
 * the status `occamsHttpStatus` gives instead of Nest's 500.
 *
 *   app.useGlobalFilters(new OccamsHttpExceptionFilter(app.get(HttpAdapterHost)));
 *   // or { provide: APP_FILTER, useClass: OccamsHttpExceptionFilter }, or @UseFilters(OccamsHttpExceptionFilter)
 *
 * A typed client's declared errors (DivError, ...) are not OccamsErrors;
 * raised from a remote user error, they answer as the error they came from
 * (their `cause`), 422, as the user error itself would (DeclaredRemoteError
 * matches them). The same classes thrown by the gateway's own code are left
 * to Nest, unless a subclass lists them:
 *
 *   @Catch(OccamsError, DivError)
 *   class CalculatorHttpFilter extends OccamsHttpExceptionFilter {}
 *
 * Override `statusOf` / `bodyOf` in a subclass to change the mapping. Other
 * exceptions are left to Nest's handlers; outside HTTP the error is passed on.
 */
@Catch(OccamsError, DeclaredRemoteError)
export class OccamsHttpExceptionFilter implements ExceptionFilter<Error> {
  constructor(@Optional() private readonly adapterHost?: HttpAdapterHost) {}

  catch(caught: Error, host: ArgumentsHost): void | Observable<never> {
    if (host.getType() !== 'http') return throwError(() => caught);
    const err = caught instanceof OccamsError ? caught : caught?.cause;
    if (!(err instanceof OccamsError)) throw caught; // a class listed in a subclass's @Catch, not from a call
    const status = this.statusOf(err);
    const body = this.bodyOf(err, status);
    const res = host.switchToHttp().getResponse<Record<string, any>>();
    const adapter = this.adapterHost?.httpAdapter;
    if (adapter !== undefined) {
      if (adapter.isHeadersSent(res)) adapter.end(res);
      else adapter.reply(res, body, status);
    } else if (typeof res.status === 'function' && typeof res.json === 'function') {
      res.status(status).json(body); // Express, when constructed with `new` and no adapter
    } else if (typeof res.code === 'function' && typeof res.send === 'function') {
      res.code(status).send(body); // Fastify, likewise
    } else {
      throw caught;
    }
  }

  protected statusOf(err: OccamsError): number {
    return occamsHttpStatus(err);
  }

  protected bodyOf(err: OccamsError, status: number): OccamsHttpErrorBody {
    const body: OccamsHttpErrorBody = { statusCode: status, code: err.code, message: err.message };
    if (err instanceof RemoteErrnoError) body.errno = err.errno;
    else if (err instanceof RemoteError && typeof err.error !== 'string') body.details = err.error;
    return body;
  }
}
