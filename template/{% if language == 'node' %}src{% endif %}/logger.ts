// pino options for Fastify: JSON lines on stdout, level names instead of numbers, ISO timestamps,
// the version on every line (handy during a canary), and credentials never written.
import type { FastifyServerOptions } from 'fastify';

import type { Config, LogLevel } from './config.js';

type PinoLevel = 'debug' | 'info' | 'warn' | 'error';

const PINO_LEVELS: Record<LogLevel, PinoLevel> = {
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  error: 'error',
};

/** Header paths that must never reach the logs, wherever a request or response is logged. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  'headers["x-api-key"]',
  'headers["set-cookie"]',
];

// pino calls this for every line. Formatting the date is the dearest part of a request line, and
// under load many lines share a millisecond: they share the string too (issue 15).
let stampedAt = -1;
let stamp = '';
function timestamp(): string {
  const now = Date.now();
  if (now !== stampedAt) {
    stampedAt = now;
    stamp = `,"time":"${new Date(now).toISOString()}"`;
  }
  return stamp;
}

export interface LogDestination {
  write(line: string): void;
}

export function loggerOptions(
  config: Config,
  stream?: LogDestination,
): NonNullable<Exclude<FastifyServerOptions['logger'], boolean>> {
  return {
    level: PINO_LEVELS[config.logLevel],
    base: { version: config.appVersion, env: config.appEnv },
    messageKey: 'msg',
    timestamp,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    ...(stream ? { stream } : {}),
  };
}
