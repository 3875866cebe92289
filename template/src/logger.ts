// pino options for Fastify: JSON lines on stdout in the fleet's one shape (docs/service-contract.md,
// "Request ids and logs": `time` in RFC 3339 UTC, `level` one of the LOG_LEVEL words, `msg`), the
// version on every line (handy during a canary), and credentials never written.
import type { FastifyServerOptions } from 'fastify';
import { destination } from 'pino';

import type { Config, LogLevel } from './config.js';

type PinoLevel = 'debug' | 'info' | 'warn' | 'error';

const PINO_LEVELS: Record<LogLevel, PinoLevel> = {
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  error: 'error',
};

// The level word each line carries: the LOG_LEVEL words, not pino's (its "warn"). pino's levels
// outside them (trace, fatal, which Fastify or a dependency may use) take the nearest word. pino
// calls this once per level when the logger is made and keeps the text, not once per line.
const LEVEL_WORDS: Readonly<Record<string, LogLevel>> = {
  trace: 'debug',
  debug: 'debug',
  info: 'info',
  warn: 'warning',
  error: 'error',
  fatal: 'error',
};

function levelField(label: string): { level: string } {
  return { level: LEVEL_WORDS[label] ?? label };
}

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

// Standard output, written in batches: a line waits in memory until 4 KiB have gathered or
// 100 ms have passed, and one write() takes them all. pino's default wrote every line on its
// own, a system call's worth of work on the event loop for each request (about 7 µs of the 35 a
// logged request cost, issue 15). The buffer is bounded: when standard output does not keep up
// (a stalled log collector), lines beyond 16 MiB are dropped rather than growing the heap until
// the pod is killed. pino flushes it synchronously when the process exits (process.exit after
// the shutdown sequence, or a crash); only a SIGKILL loses the last 100 ms.
let stdout: LogDestination | undefined;
function standardOutput(): LogDestination {
  stdout ??= destination({
    dest: 1,
    sync: false,
    minLength: 4096,
    maxLength: 16 * 1024 * 1024,
    periodicFlush: 100,
  });
  return stdout;
}

// With tracing on, src/otel.ts sets this: the trace_id and span_id of the active span, which pino
// adds to every line (its mixin). With tracing off there is no mixin, and a line costs nothing more.
let traceFields: (() => object) | undefined;

export function setTraceFields(fields: (() => object) | undefined): void {
  traceFields = fields;
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
    formatters: { level: levelField },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    stream: stream ?? standardOutput(),
    ...(traceFields === undefined ? {} : { mixin: traceFields }),
  };
}
