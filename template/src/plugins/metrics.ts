// Prometheus metrics of the service contract (docs/service-contract.md in the template): the
// process defaults (CPU, memory, event loop lag, GC) and, for every request on either port, a
// count and a latency histogram by method, route and status code. Every label value is bounded:
// the route is the pattern (/users/:id), never the raw URL, and unknown methods share one value,
// so that no client can create series without end.
//
// The two request series are kept in plain numbers and handed to prom-client's registry only when
// /metrics is scraped. Through prom-client's Counter and Histogram, every request built a label
// object, validated it and hashed it into a series key, twice: 3 µs of the 9 µs the contract added
// to a request on /health (issue 15). Here a request finds its series with two map lookups and
// adds to it; the exposition is the one prom-client writes for its own histograms.
import type { FastifyPluginAsync, FastifyPluginCallback, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { type Metric, Registry, collectDefaultMetrics } from 'prom-client';

/** The contract's latency buckets, in seconds. */
export const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

// Their index in the key of a series; any other method is counted as OTHER (the last index).
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'OTHER'] as const;
const METHOD_INDEX = new Map<string, number>(METHODS.map((method, index) => [method, index]));
const OTHER = METHODS.length - 1;

interface Labels {
  method: string;
  route: string;
  status_code: string;
}

/** One (method, route, status code): its count, the sum of its latencies and its buckets. */
class Series {
  count = 0;
  sum = 0;
  /** Observations per bucket, not cumulative; the last one counts those above 10 s. */
  readonly buckets = new Float64Array(BUCKETS.length + 1);

  constructor(readonly labels: Readonly<Labels>) {}

  observe(seconds: number): void {
    this.count += 1;
    this.sum += seconds;
    let i = 0;
    while (i < BUCKETS.length && seconds > (BUCKETS[i] ?? Infinity)) i += 1;
    this.buckets[i] = (this.buckets[i] ?? 0) + 1;
  }
}

/** The route label: the pattern of the route that answered, "unmatched" when none did. */
export function routeLabel(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

/** One registry per process, shared by the application and the management listener. */
export class HttpMetrics {
  readonly registry = new Registry();
  // By route, then by status code and method: bounded like the labels themselves.
  private readonly series = new Map<string, Map<number, Series>>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const all = (): Series[] => [...this.series.values()].flatMap((byKey) => [...byKey.values()]);
    const reset = (): void => {
      this.series.clear();
    };
    const describe = ({ name, help, type, aggregator }: Record<string, unknown>) => ({
      name,
      help,
      type,
      aggregator,
    });
    // The registry asks a metric for its name, help, type, aggregator and values (get) and resets
    // it (reset); these two answer like prom-client's Counter and Histogram.
    const requests = {
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route and status code',
      type: 'counter',
      aggregator: 'sum',
      reset,
      get: async () => ({
        ...describe(requests),
        values: all().map((s) => ({ labels: s.labels, value: s.count })),
      }),
    };
    const duration = {
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency in seconds, by method, route and status code',
      type: 'histogram',
      aggregator: 'sum',
      reset,
      get: async () => ({
        ...describe(duration),
        values: all().flatMap((s) => {
          const bucket = `${duration.name}_bucket`;
          let cumulative = 0;
          return [
            ...BUCKETS.map((le, i) => {
              cumulative += s.buckets[i] ?? 0;
              return { labels: { le, ...s.labels }, value: cumulative, metricName: bucket };
            }),
            { labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: bucket },
            { labels: s.labels, value: s.sum, metricName: `${duration.name}_sum` },
            { labels: s.labels, value: s.count, metricName: `${duration.name}_count` },
          ];
        }),
      }),
    };
    this.registry.registerMetric(requests as unknown as Metric);
    this.registry.registerMetric(duration as unknown as Metric);
  }

  observe(method: string, route: string, statusCode: number, seconds: number): void {
    let byKey = this.series.get(route);
    if (byKey === undefined) {
      byKey = new Map();
      this.series.set(route, byKey);
    }
    const index = METHOD_INDEX.get(method) ?? OTHER;
    const key = statusCode * METHODS.length + index;
    let series = byKey.get(key);
    if (series === undefined) {
      series = new Series({
        method: METHODS[index] ?? 'OTHER',
        route,
        status_code: String(statusCode),
      });
      byKey.set(key, series);
    }
    series.observe(seconds);
  }
}

export interface MetricsOptions {
  metrics: HttpMetrics;
}

/** Counts every request the instance answers, 404s and errors included. */
// Synchronous: an async hook costs a promise and a microtask per request.
const metrics: FastifyPluginCallback<MetricsOptions> = (app, { metrics }, done) => {
  app.addHook('onResponse', (request, reply, next) => {
    metrics.observe(
      request.method,
      routeLabel(request),
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    next();
  });
  done();
};

export default fp(metrics, { name: 'metrics' });

/** GET /metrics: the Prometheus text exposition of the shared registry. */
export const metricsRoute: FastifyPluginAsync<MetricsOptions> = async (app, { metrics }) => {
  app.get('/metrics', async (_request, reply) => {
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};
