/**
 * Gives every request an id, attaches it to every log line written while serving it and
 * returns it as `X-Request-Id`; logs one access line per request when it finishes. The
 * access line has the path only: query strings carry codes and state.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { withRequestId, type Logger } from '../logging/logger.js';

export function requestContext(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const requestId = randomUUID();
    const started = process.hrtime.bigint();
    res.setHeader('X-Request-Id', requestId);
    withRequestId(
      requestId,
      () => {
        res.on('finish', () => {
          const path = req.originalUrl.split('?')[0];
          logger.info('request', {
            method: req.method,
            path,
            status: res.statusCode,
            ms: Number(process.hrtime.bigint() - started) / 1e6,
            ip: req.ip,
          });
        });
        next();
      },
      req.ip,
    );
  };
}
