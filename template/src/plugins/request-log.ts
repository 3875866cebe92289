// One JSON log line per request, carrying the request id, and the id echoed in a response header
// so that a client's report can be matched with the logs. Never logs bodies, headers or queries.
// The line's fields are the contract's (docs/service-contract.md, "Request ids and logs"):
// request_id, method, path, route, status, duration_ms.
//
// Both hooks are synchronous (a callback, not an async function): an async hook costs Fastify a
// promise and a microtask on every request, for work that never waits (issue 15).
import type { FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';

import { routeLabel } from './metrics.js';

/** Probe and scrape endpoints log at debug: they run every few seconds on every pod. */
const QUIET_ROUTES = new Set(['/health', '/ready', '/health/detailed', '/metrics']);

// pino's level numbers, to ask whether a line would be written ('silent' and unknown: never).
// The request's own logger is asked, since a route may set its own logLevel.
const LEVEL_VALUES: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};
const DEBUG = 20;
const INFO = 30;
const ERROR = 50;

const requestLog: FastifyPluginCallback = (app, _options, done) => {
  app.addHook('onRequest', (request, reply, next) => {
    void reply.header('x-request-id', request.id);
    next();
  });

  // The line's request_id comes from the request's child logger (requestIdLogLabel in app.ts).
  app.addHook('onResponse', (request, reply, next) => {
    const route = routeLabel(request); // the metrics label: the pattern, or "unmatched"
    // debug for probes and scrapes whatever they answer, error for other 5xx answers (so that
    // LOG_LEVEL=warning still shows server errors), info for the rest: as in every language.
    const level = QUIET_ROUTES.has(route) ? DEBUG : reply.statusCode >= 500 ? ERROR : INFO;
    const log = request.log;
    // The fields are built only for a line that will be written: at the default level (info)
    // every probe and scrape would otherwise format a line for nothing.
    if ((LEVEL_VALUES[log.level] ?? Infinity) <= level) {
      const url = request.url;
      const query = url.indexOf('?');
      const fields = {
        method: request.method,
        path: query === -1 ? url : url.slice(0, query),
        route,
        status: reply.statusCode,
        duration_ms: Math.round(reply.elapsedTime * 10) / 10,
      };
      if (level === DEBUG) log.debug(fields, 'request');
      else if (level === ERROR) log.error(fields, 'request');
      else log.info(fields, 'request');
    }
    next();
  });
  done();
};

export default fp(requestLog, { name: 'request-log' });
