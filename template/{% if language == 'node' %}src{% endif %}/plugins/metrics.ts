// Prometheus metrics of the service contract (docs/service-contract.md in the template): the
// process defaults (CPU, memory, event loop lag, GC) and, for every request on either port, a
// count and a latency histogram by method, route and status code. Every label value is bounded:
// the route is the pattern (/users/:id), never the raw URL, and unknown methods share one value,
// so that no client can create series without end.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LABELS = ['method', 'route', 'status_code'] as const;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The route label: the pattern of the route that answered, "unmatched" when none did. */
export function routeLabel(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

/** One registry per process, shared by the application and the management listener. */
export class HttpMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<(typeof LABELS)[number]>;
  private readonly duration: Histogram<(typeof LABELS)[number]>;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route and status code',
      labelNames: LABELS,
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency in seconds, by method, route and status code',
      labelNames: LABELS,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
  }

  observe(method: string, route: string, statusCode: number, seconds: number): void {
    const labels = {
      method: METHODS.has(method) ? method : 'OTHER',
      route,
      status_code: String(statusCode),
    };
    this.requests.inc(labels);
    this.duration.observe(labels, seconds);
  }
}

export interface MetricsOptions {
  metrics: HttpMetrics;
}

/** Counts every request the instance answers, 404s and errors included. */
const metrics: FastifyPluginAsync<MetricsOptions> = async (app, { metrics }) => {
  app.addHook('onResponse', async (request, reply) => {
    metrics.observe(
      request.method,
      routeLabel(request),
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
  });
};

export default fp(metrics, { name: 'metrics' });

/** GET /metrics: the Prometheus text exposition of the shared registry. */
export const metricsRoute: FastifyPluginAsync<MetricsOptions> = async (app, { metrics }) => {
  app.get('/metrics', async (_request, reply) => {
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};
