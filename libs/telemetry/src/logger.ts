import { pino, type Logger } from 'pino';
import { processScrubber } from './secret-scrubber.js';

/** Paths pino redacts in every log line (secrets never reach logs). */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  '*.password',
  '*.apiKey',
  '*.token',
  '*.secret',
  '*.NATS_PASSWORD',
  '*.REDIS_URL',
];

export type { Logger };

/** JSON logs on stdout, one object a line, with the service name on each. */
export function createLogger(service: string, level = 'info', destination?: pino.DestinationStream): Logger {
  return pino({
    name: service,
    level,
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // By value, after serialization: secrets that are just text inside a message or an error (see SecretScrubber).
    hooks: { streamWrite: (line: string) => processScrubber.scrub(line) },
  }, destination);
}
