// The health contract shared by every service of the fleet:
//   GET /health           liveness: 200 while the process can serve; checks no dependency
//   GET /ready            readiness: 503 while starting, draining or when a required check fails
//   GET /health/detailed  diagnostics: version, uptime and every check with its latency
import type { FastifyPluginAsync } from 'fastify';

import type { Config } from '../config.js';
import type { Lifecycle } from '../lifecycle.js';
import type { CheckResult, ReadinessChecks } from '../readiness.js';

export interface HealthOptions {
  config: Config;
  lifecycle: Lifecycle;
  checks: ReadinessChecks;
}

const requiredFailed = (results: CheckResult[]): boolean =>
  results.some((r) => r.required && r.status === 'fail');

const health: FastifyPluginAsync<HealthOptions> = async (app, { config, lifecycle, checks }) => {
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
      status: ready ? 'ready' : 'not_ready',
      // Error messages stay out of /ready; /health/detailed has them.
      checks: results.map(({ name, status, required, latencyMs }) => ({
        name,
        status,
        required,
        latencyMs,
      })),
    });
  });

  app.get('/health/detailed', async (_request, reply) => {
    const results = await checks.run();
    const failedAny = results.some((r) => r.status === 'fail');
    return reply.code(requiredFailed(results) ? 503 : 200).send({
      status: failedAny ? 'degraded' : 'ok',
      phase: lifecycle.phase,
      version: config.appVersion,
      environment: config.appEnv,
      uptimeSeconds: lifecycle.uptimeSeconds(),
      timestamp: new Date().toISOString(),
      checks: results,
    });
  });
};

export default health;
