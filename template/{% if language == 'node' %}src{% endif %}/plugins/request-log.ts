// One JSON log line per request, carrying the request id, and the id echoed in a response header
// so that a client's report can be matched with the logs. Never logs bodies, headers or queries.
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

/** Probe and scrape endpoints log at debug: they run every few seconds on every pod. */
const QUIET_ROUTES = new Set(['/health', '/ready', '/health/detailed', '/metrics']);

const requestLog: FastifyPluginAsync = async (app) => {
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });

  // The line's request_id comes from the request's child logger (requestIdLogLabel in app.ts).
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url;
    const fields = {
      method: request.method,
      path: request.url.split('?', 1)[0],
      route: route ?? null,
      status: reply.statusCode,
      duration_ms: Math.round(reply.elapsedTime * 10) / 10,
    };
    if (route !== undefined && QUIET_ROUTES.has(route)) request.log.debug(fields, 'request');
    else request.log.info(fields, 'request');
  });
};

export default fp(requestLog, { name: 'request-log' });
