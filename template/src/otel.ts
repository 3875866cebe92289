// The OpenTelemetry SDK, set up when tracing is on (src/tracing.ts decides; with tracing off this
// module is never imported). The official packages do the work; what is written here is glue:
//   - the resource: service.name (OTEL_SERVICE_NAME, else the slug), service.version (APP_VERSION),
//     deployment.environment.name (APP_ENV), plus OTEL_RESOURCE_ATTRIBUTES;
//   - one SERVER span per application request, from @opentelemetry/instrumentation-http, named
//     "{method} {route}" with the route pattern the metrics use: @fastify/otel, the Fastify team's
//     instrumentation (which OpenTelemetry recommends in place of its deprecated
//     @opentelemetry/instrumentation-fastify), gives the HTTP span Fastify's route url;
//   - no span at all for the operational endpoints, on either port;
//   - trace_id and span_id on every log line written while a sampled span is active;
//   - one warning line per process when spans cannot be exported, instead of an error per batch.
// Everything else (OTEL_EXPORTER_OTLP_*, OTEL_BSP_*, OTEL_TRACES_SAMPLER...) the SDK reads itself.
import { createRequire } from 'node:module';

import { FastifyOtelInstrumentation } from '@fastify/otel';
import { ROOT_CONTEXT, TraceFlags, context, trace } from '@opentelemetry/api';
import { setGlobalErrorHandler } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node';

import type { Config } from './config.js';
import { setTraceFields } from './logger.js';
import { OPS_PATHS } from './routes/health.js';
import { SERVICE_NAME } from './service.js';
import type { Tracing, WarningLogger } from './tracing.js';

export interface OtelOptions {
  /** Replaces the OTLP exporter (tests pass an in-memory one). */
  exporter?: SpanExporter;
}

const pathOf = (url: string | undefined): string => {
  const path = url ?? '/';
  const query = path.indexOf('?');
  return query === -1 ? path : path.slice(0, query);
};

/** Probes and scrapes, every few seconds on every pod: never traced. */
const isOperational = (url: string | undefined): boolean => OPS_PATHS.has(pathOf(url));

/**
 * The URL the exporter sends to, as the SDK derives it from the environment, without credentials
 * (a user:password in it must not reach the logs), and whether it is a valid http(s) URL.
 */
export function tracesEndpoint(env: NodeJS.ProcessEnv): { endpoint: string; valid: boolean } {
  const specific = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']?.trim() ?? '';
  const base = env['OTEL_EXPORTER_OTLP_ENDPOINT']?.trim() ?? '';
  const raw = specific !== '' ? specific : `${base.replace(/\/+$/, '')}/v1/traces`;
  try {
    const url = new URL(raw);
    url.username = '';
    url.password = '';
    return { endpoint: url.href, valid: url.protocol === 'http:' || url.protocol === 'https:' };
  } catch {
    return { endpoint: raw.replace(/^[^/]*@/, ''), valid: false };
  }
}

// The fields pino adds to every line (its mixin): the ids of the active span when it is sampled.
// A new object each time: pino merges the line's own fields into it.
function traceFields(): object {
  const span = trace.getSpan(context.active());
  if (span === undefined) return {};
  const { traceId, spanId, traceFlags } = span.spanContext();
  return (traceFlags & TraceFlags.SAMPLED) === 0 ? {} : { trace_id: traceId, span_id: spanId };
}

export function startOtel(config: Config, options: OtelOptions = {}): Tracing {
  const { endpoint, valid } = tracesEndpoint(process.env);

  // One warning per process, whatever fails how often: the SDK reports every failed batch to the
  // global error handler (its default writes each one through the diagnostic logger).
  let log: WarningLogger | undefined;
  let pending: [object, string] | undefined;
  let warned = false;
  // Outside any span: the export that failed may have been scheduled inside some request.
  const write = (logger: WarningLogger, [fields, message]: [object, string]): void => {
    context.with(ROOT_CONTEXT, () => {
      logger.warn(fields, message);
    });
  };
  const warnOnce = (fields: object, message: string): void => {
    if (warned) return;
    warned = true;
    if (log === undefined) pending = [fields, message];
    else write(log, [fields, message]);
  };
  setGlobalErrorHandler((error) => {
    warnOnce(
      {
        endpoint,
        error: typeof error === 'string' ? error : (error.message ?? error.name ?? 'unknown'),
      },
      `traces: export to ${endpoint} failed; spans are being dropped (logged once)`,
    );
  });

  // A malformed endpoint: the exporter would fall back to localhost:4318, which is not what the
  // operator asked for. Spans are still created (trace ids in the logs, traceparent passed on)
  // and dropped.
  let exporter = options.exporter;
  if (exporter === undefined) {
    if (!valid) {
      warnOnce(
        { endpoint },
        `traces: the OTLP endpoint ${endpoint} is not an http(s) URL; spans are being dropped (logged once)`,
      );
    } else {
      exporter = new OTLPTraceExporter();
    }
  }

  const resource = defaultResource()
    .merge(
      resourceFromAttributes({
        'service.name': SERVICE_NAME,
        'service.version': config.appVersion,
        'deployment.environment.name': config.appEnv,
      }),
    )
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, which win over the defaults above.
    .merge(detectResources({ detectors: [envDetector] }));

  const provider = new NodeTracerProvider({
    resource,
    // Batched off the request path; OTEL_BSP_* bound its queue (2048 spans) and its timing.
    spanProcessors: exporter === undefined ? [] : [new BatchSpanProcessor(exporter)],
  });
  // W3C traceparent (and baggage) in and out; AsyncLocalStorage carries the active span.
  provider.register();

  new HttpInstrumentation({
    ignoreIncomingRequestHook: (request) => isOperational(request.url),
  });
  new FastifyOtelInstrumentation({
    // Attaches itself to every Fastify instance when it is created (the diagnostics channel
    // fastify.initialization), so src/app.ts needs no change.
    registerOnInitialization: true,
    // The request span and a span for the route handler; none for each of the service's own
    // hooks, a few synchronous header setters per request (a route can ask for them:
    // config: { otel: { instrumentHooks: true } }).
    instrumentHooks: false,
    ignorePaths: ({ url }) => isOperational(url),
  });
  // The HTTP instrumentation patches node:http when it is next required: do it now, whatever
  // loaded it before.
  createRequire(import.meta.url)('node:http');

  setTraceFields(traceFields);

  return {
    async shutdown(timeoutMs: number) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
          resolve(false);
        }, timeoutMs);
      });
      // shutdown() exports what the batch processor holds first; a failed export has already
      // been reported to the error handler above.
      const done = provider.shutdown().then(
        () => true,
        () => true,
      );
      const flushed = await Promise.race([done, deadline]);
      clearTimeout(timer);
      return flushed;
    },
    useLogger(logger: WarningLogger) {
      log = logger;
      if (pending !== undefined) write(logger, pending);
      pending = undefined;
    },
  };
}
