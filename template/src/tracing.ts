// OpenTelemetry traces (docs/service-contract.md in the template, "Traces"): on only when an OTLP
// endpoint is set, off when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. This module is the
// switch and nothing else: it imports no OpenTelemetry package, so that with tracing off the SDK is
// never loaded and a request pays nothing for it. src/otel.ts, the SDK set-up, is imported only
// when tracing is on, by src/server.ts before it loads the application (the HTTP instrumentation
// must be in place before Fastify creates its servers).
import type { Config } from './config.js';

/** What src/server.ts needs of a running tracer. */
export interface Tracing {
  /** Exports the spans still held, then stops; false when `timeoutMs` ran out first. */
  shutdown(timeoutMs: number): Promise<boolean>;
  /** Where the one warning about dropped spans goes: the service's logger, once it exists. */
  useLogger(log: WarningLogger): void;
}

export interface WarningLogger {
  warn(fields: object, message: string): void;
}

const isSet = (value: string | undefined): boolean => value !== undefined && value.trim() !== '';

/** Whether the standard OTEL_* variables turn tracing on. */
export function tracingEnabled(env: NodeJS.ProcessEnv): boolean {
  if (
    !isSet(env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) &&
    !isSet(env['OTEL_EXPORTER_OTLP_ENDPOINT'])
  ) {
    return false;
  }
  if (env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true') return false;
  return env['OTEL_TRACES_EXPORTER']?.trim().toLowerCase() !== 'none';
}

/** Starts tracing when the environment turns it on; undefined (and nothing loaded) otherwise. */
export async function startTracing(
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Tracing | undefined> {
  if (!tracingEnabled(env)) return undefined;
  const { startOtel } = await import('./otel.js');
  return startOtel(config);
}
