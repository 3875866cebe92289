// Prometheus metrics: the process defaults (CPU, memory, event loop lag, GC) and, for every
// request, a count and a latency histogram by method, route and status code. The route is the
// pattern (/users/:id), never the raw URL, so that the number of series stays bounded.
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsOptions {
  /** A registry of its own per application, so that tests can build many apps side by side. */
  registry?: Registry;
}

const LABELS = ['method', 'route', 'status_code'] as const;

const metrics: FastifyPluginAsync<MetricsOptions> = async (app, options) => {
  const registry = options.registry ?? new Registry();
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route and status code',
    labelNames: LABELS,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency in seconds, by method, route and status code',
    labelNames: LABELS,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  app.addHook('onResponse', async (request, reply) => {
    const labels = {
      method: request.method,
      // Unknown paths share one label value: a scanner must not create a series per URL.
      route: request.routeOptions.url ?? 'unmatched',
      status_code: String(reply.statusCode),
    };
    requests.inc(labels);
    duration.observe(labels, reply.elapsedTime / 1000);
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
};

export default fp(metrics, { name: 'metrics' });
