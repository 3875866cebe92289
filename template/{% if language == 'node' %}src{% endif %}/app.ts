// Builds the application without listening: src/server.ts listens, tests call buildApp in-process.
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES } from 'node:http';

import helmet from '@fastify/helmet';
import Fastify, { type FastifyError, type FastifyInstance, LogController } from 'fastify';

import { registerChecks } from './app/checks.js';
import routes from './app/routes.js';
import type { Config } from './config.js';
import { Lifecycle } from './lifecycle.js';
import { type LogDestination, loggerOptions } from './logger.js';
import metrics from './plugins/metrics.js';
import requestLog from './plugins/request-log.js';
import { ReadinessChecks } from './readiness.js';
import health from './routes/health.js';

export interface BuildOptions {
  config: Config;
  /** Shared with src/server.ts, which flips it to draining on SIGTERM. */
  lifecycle?: Lifecycle;
  /** Checks registered before the team's own (tests use this). */
  checks?: ReadinessChecks;
  /** Where log lines go; stdout when absent. */
  logStream?: LogDestination;
}

// A request id from the caller (a proxy or another service) is kept when it is a plain token, so
// that one id follows a request across services; anything else is replaced by a fresh UUID.
const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function requestId(request: IncomingMessage): string {
  const header = request.headers['x-request-id'];
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
}

export function buildApp(options: BuildOptions): FastifyInstance {
  const { config } = options;
  const lifecycle = options.lifecycle ?? new Lifecycle();
  const checks = options.checks ?? new ReadinessChecks();

  const app = Fastify({
    logger: loggerOptions(config, options.logStream),
    // src/plugins/request-log.ts writes one line per request instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: requestId,
    // While closing, requests arriving on kept-alive connections get 503 and `Connection: close`.
    return503OnClosing: true,
  });

  void app.register(helmet);
  void app.register(requestLog);
  void app.register(metrics);

  app.setNotFoundHandler((_request, reply) => {
    void reply.code(404).send({ statusCode: 404, error: 'Not Found' });
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const statusCode = error.statusCode ?? 500;
    if (statusCode >= 500) {
      request.log.error({ err: error }, 'request failed');
      // Internal details stay in the logs; the caller gets the request id to report.
      return reply
        .code(statusCode)
        .send({ statusCode, error: STATUS_CODES[statusCode], requestId: request.id });
    }
    return reply
      .code(statusCode)
      .send({ statusCode, error: STATUS_CODES[statusCode], message: error.message });
  });

  registerChecks(checks, config);
  void app.register(health, { config, lifecycle, checks });
  void app.register(routes, { config });

  app.addHook('onReady', async () => {
    lifecycle.markReady();
  });

  return app;
}
