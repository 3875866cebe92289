// Builds the application without listening: src/server.ts listens, tests call buildApp in-process.
// With MANAGEMENT_PORT set there are two Fastify instances: the application (PORT) without the
// operational endpoints, and the management instance (MANAGEMENT_PORT) with only them. They share
// one lifecycle, one set of readiness checks and one metrics registry.
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES } from 'node:http';

import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';

import { registerChecks } from './app/checks.js';
import routes from './app/routes.js';
import type { Config } from './config.js';
import { Lifecycle } from './lifecycle.js';
import { type LogDestination, loggerOptions } from './logger.js';
import metrics, { HttpMetrics } from './plugins/metrics.js';
import requestLog from './plugins/request-log.js';
import securityHeaders from './plugins/security-headers.js';
import { ReadinessChecks } from './readiness.js';
import health, { OPS_PATHS } from './routes/health.js';

export interface BuildOptions {
  config: Config;
  /** Shared with src/server.ts, which flips it to draining on SIGTERM. */
  lifecycle?: Lifecycle;
  /** Checks registered before the team's own (tests use this). */
  checks?: ReadinessChecks;
  /** Where log lines go; stdout when absent. */
  logStream?: LogDestination;
}

export interface Apps {
  /** The application, on PORT; it serves the operational endpoints too when `management` is absent. */
  app: FastifyInstance;
  /** The operational endpoints alone, on MANAGEMENT_PORT; absent when it is not set. */
  management?: FastifyInstance | undefined;
}

/** The limits of the service contract. */
export const LIMITS = {
  /** Request body: larger ones get 413, by Content-Length before routing or while reading. */
  bodyBytes: 1024 * 1024,
  /** Request line and headers together: Node's HTTP parser answers 431 above it. */
  headerBytes: 16 * 1024,
  /** Time a client has to send the request headers; then Node answers 408 and closes. */
  headersTimeoutMs: 10_000,
} as const;

// A request id from the caller (a proxy or another service) is kept when it is a plain token, so
// that one id follows a request across services; anything else is replaced by a fresh UUID.
const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function requestId(request: IncomingMessage): string {
  const header = request.headers['x-request-id'];
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
}

export type ErrorWord = 'not_found' | 'method_not_allowed' | 'payload_too_large' | 'internal_error';

/** The one error body of the contract. */
export function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  statusCode: number,
  error: ErrorWord,
): FastifyReply {
  return reply.code(statusCode).send({ error, request_id: request.id });
}

interface Shared {
  config: Config;
  lifecycle: Lifecycle;
  checks: ReadinessChecks;
  metrics: HttpMetrics;
  logStream?: LogDestination | undefined;
}

function createInstance(shared: Shared, serves: { ops: boolean }): FastifyInstance {
  const { config } = shared;
  const app = Fastify({
    logger: loggerOptions(config, shared.logStream),
    // src/plugins/request-log.ts writes one line per request instead of Fastify's two; every
    // line of a request carries its id as request_id.
    logController: new LogController({
      disableRequestLogging: true,
      requestIdLogLabel: 'request_id',
    }),
    requestIdHeader: false,
    genReqId: requestId,
    bodyLimit: LIMITS.bodyBytes,
    // Set here so that they do not depend on NODE_OPTIONS (--max-http-header-size). Node checks
    // the headers timeout every connectionsCheckingInterval (30 s by default): once a second
    // closes a slow client within 11 s instead of 40.
    http: {
      maxHeaderSize: LIMITS.headerBytes,
      headersTimeout: LIMITS.headersTimeoutMs,
      connectionsCheckingInterval: 1000,
    },
    // While closing, a request arriving on a kept-alive connection is still served, with
    // `Connection: close` and every header of the contract, rather than Fastify's bare 503.
    return503OnClosing: false,
  });

  void app.register(securityHeaders);
  void app.register(requestLog);
  void app.register(metrics, { metrics: shared.metrics });

  // Bodies over the limit are refused from Content-Length before any handler (even the not-found
  // one) runs; chunked bodies are bounded by bodyLimit while Fastify reads them.
  // Synchronous, like every per-request hook: an async one costs a promise and a microtask.
  app.addHook('onRequest', (request, reply, next) => {
    const length = request.headers['content-length'];
    if (length !== undefined && Number(length) > LIMITS.bodyBytes) {
      // Closing spares reading the rest of a body nobody wants.
      void reply.header('connection', 'close');
      sendError(request, reply, 413, 'payload_too_large');
      return;
    }
    next();
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0] ?? '';
    if (serves.ops && OPS_PATHS.has(path)) {
      // GET and HEAD matched their routes; every other method on an operational path is a 405.
      void reply.header('allow', 'GET, HEAD').header('cache-control', 'no-store');
      return sendError(request, reply, 405, 'method_not_allowed');
    }
    return sendError(request, reply, 404, 'not_found');
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const statusCode = error.statusCode ?? 500;
    if (statusCode >= 500) {
      // The exception's text stays in the logs; the caller gets the request id to report.
      request.log.error({ err: error }, 'request failed');
      return sendError(request, reply, statusCode, 'internal_error');
    }
    if (statusCode === 413) return sendError(request, reply, 413, 'payload_too_large');
    if (statusCode === 404) return sendError(request, reply, 404, 'not_found');
    // Other client errors (malformed JSON, a failed route schema) tell the caller what to fix,
    // in the same shape: the status's words in snake_case ("bad_request"), plus the message.
    const word = (STATUS_CODES[statusCode] ?? 'error').toLowerCase().replace(/\W+/g, '_');
    return reply
      .code(statusCode)
      .send({ error: word, message: error.message, request_id: request.id });
  });

  if (serves.ops) void app.register(health, shared);
  return app;
}

/** The application and, with MANAGEMENT_PORT set, the management instance. */
export function buildApps(options: BuildOptions): Apps {
  const { config } = options;
  const shared: Shared = {
    config,
    lifecycle: options.lifecycle ?? new Lifecycle(),
    checks: options.checks ?? new ReadinessChecks(),
    metrics: new HttpMetrics(),
    logStream: options.logStream,
  };
  registerChecks(shared.checks, config);

  const separate = config.managementPort !== undefined;
  const app = createInstance(shared, { ops: !separate });
  void app.register(routes, { config });
  // Ready once the application has loaded every plugin and route, just before it listens.
  app.addHook('onReady', async () => {
    shared.lifecycle.markReady();
  });
  return { app, management: separate ? createInstance(shared, { ops: true }) : undefined };
}

/** The application alone (tests): with MANAGEMENT_PORT unset, it serves everything. */
export function buildApp(options: BuildOptions): FastifyInstance {
  return buildApps(options).app;
}
