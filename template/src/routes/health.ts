// The operational endpoints of the service contract (docs/service-contract.md in the template),
// the same in every service of the fleet:
//   GET /health           liveness: 200 while the process can serve; checks no dependency
//   GET /ready            readiness: 503 while starting, draining or when a required check fails
//   GET /health/detailed  diagnostics: phase, version, uptime and every check with its latency
//   GET /metrics          the Prometheus exposition (src/plugins/metrics.ts)
// HEAD is answered like GET (Fastify's exposeHeadRoutes); any other method on these paths gets
// 405 from the not-found handler in src/app.ts. With MANAGEMENT_PORT set they are served only on
// that port.
import type { FastifyPluginAsync } from 'fastify';

import type { Config } from '../config.js';
import type { Lifecycle } from '../lifecycle.js';
import { type HttpMetrics, metricsRoute } from '../plugins/metrics.js';
import type { CheckResult, ReadinessChecks } from '../readiness.js';
import { SERVICE_NAME } from '../service.js';

export const OPS_PATHS = new Set(['/health', '/ready', '/health/detailed', '/metrics']);

export interface HealthOptions {
  config: Config;
  lifecycle: Lifecycle;
  checks: ReadinessChecks;
  metrics: HttpMetrics;
}

const requiredFailed = (results: CheckResult[]): boolean =>
  results.some((r) => r.required && r.status === 'fail');

const health: FastifyPluginAsync<HealthOptions> = async (
  app,
  { config, lifecycle, checks, metrics },
) => {
  // Probes and scrapes must never see a cached answer. This plugin is encapsulated (not wrapped
  // in fastify-plugin), so the hook covers exactly the routes below. Synchronous, like every
  // per-request hook of the service: an async one costs a promise and a microtask.
  app.addHook('onRequest', (_request, reply, next) => {
    void reply.header('cache-control', 'no-store');
    next();
  });

  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/ready', async (_request, reply) => {
    const phase = lifecycle.phase;
    if (phase !== 'ready') {
      // Starting or draining: do not even run the checks.
      return reply.code(503).send({ status: phase, checks: [] });
    }
    const results = await checks.run();
    const ready = !requiredFailed(results);
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'unavailable',
      // Error texts stay out of /ready (more callers reach it, and they can name hosts);
      // /health/detailed has them.
      checks: results.map(({ name, status, required, latency_ms }) => ({
        name,
        status,
        required,
        latency_ms,
      })),
    });
  });

  // Status and code follow the checks only, whatever the phase: a draining pod with healthy
  // dependencies answers 200 with phase "draining".
  app.get('/health/detailed', async (_request, reply) => {
    const results = await checks.run();
    const unavailable = requiredFailed(results);
    const degraded = results.some((r) => r.status === 'fail');
    return reply.code(unavailable ? 503 : 200).send({
      status: unavailable ? 'unavailable' : degraded ? 'degraded' : 'ok',
      phase: lifecycle.phase,
      service: SERVICE_NAME,
      version: config.appVersion,
      environment: config.appEnv,
      uptime_seconds: lifecycle.uptimeSeconds(),
      timestamp: new Date().toISOString(),
      checks: results,
    });
  });

  await app.register(metricsRoute, { metrics });
};

export default health;
