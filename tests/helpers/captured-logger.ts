/** The service's real logger (winston, with its redaction), writing into memory for tests. */
import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger, type Logger } from '../../src/logging/logger.js';

export interface CapturedLogger {
  logger: Logger;
  /** Every line written so far (JSON strings). */
  lines: string[];
  /** The lines parsed. */
  records(): Record<string, unknown>[];
}

export function captureLogger(
  level: 'error' | 'warn' | 'info' | 'debug' = 'debug',
): CapturedLogger {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(line);
      callback();
    },
  });
  const logger = createLogger({
    level,
    console: false,
    transports: [new winston.transports.Stream({ stream: sink })],
  });
  return {
    logger,
    lines,
    records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
