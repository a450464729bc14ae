import { type ArgumentsHost, Catch, type ExceptionFilter, HttpStatus } from '@nestjs/common';
import { OccamsError, RemoteErrnoError } from '../../lib/index.js';

/** Maps occams errors to HTTP: user errors 400, unreachable 503, timeout 504, the rest 502. */
@Catch(OccamsError)
export class CalculatorErrorsFilter implements ExceptionFilter {
  catch(err: OccamsError, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<{ status(n: number): { json(b: unknown): void } }>();
    const status =
      err.code === 'user_error' || err.code === 'user_errno'
        ? HttpStatus.BAD_REQUEST
        : err.code === 'rpc_unreachable'
          ? HttpStatus.SERVICE_UNAVAILABLE
          : err.code === 'rpc_timeout'
            ? HttpStatus.GATEWAY_TIMEOUT
            : HttpStatus.BAD_GATEWAY;
    res.status(status).json({
      statusCode: status,
      code: err.code,
      message: err.message,
      ...(err instanceof RemoteErrnoError ? { errno: err.errno } : {}),
    });
  }
}
