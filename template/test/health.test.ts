import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';

import { Lifecycle } from '../src/lifecycle.js';
import { ReadinessChecks } from '../src/readiness.js';
import { SERVICE_NAME } from '../src/service.js';
import { buildTestApp } from './helpers.js';

const healthy = () => Promise.resolve();
const down = () => Promise.reject(new Error('connection refused'));

/** A lifecycle that never finishes starting. */
class StillStarting extends Lifecycle {
  override markReady(): void {
    // stays in 'starting'
  }
}

describe('GET /health (liveness)', () => {
  it('answers 200 {"status":"ok"} without running any check', async () => {
    let ran = false;
    const checks = new ReadinessChecks().register('db', () => {
      ran = true;
      return down();
    });
    const { app } = buildTestApp({ checks });
    const res = await app.inject({ method: 'GET', url: '/health' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(ran, false);
  });

  it('stays 200 while draining: the process can still serve', async () => {
    const lifecycle = new Lifecycle();
    const { app } = buildTestApp({ lifecycle });
    await app.ready();
    lifecycle.startDraining();
    const res = await app.inject({ method: 'GET', url: '/health' });
    assert.equal(res.statusCode, 200);
  });
});

describe('GET /ready (readiness)', () => {
  it('answers 200 and lists each check once the app is ready', async () => {
    const checks = new ReadinessChecks()
      .register('db', healthy)
      .register('cache', down, { required: false });
    const { app } = buildTestApp({ checks });
    const res = await app.inject({ method: 'GET', url: '/ready' });
    assert.equal(res.statusCode, 200);
    const body = res.json<{ status: string; checks: Record<string, unknown>[] }>();
    assert.equal(body.status, 'ready');
    assert.deepEqual(
      body.checks.map(({ name, status, required }) => ({ name, status, required })),
      [
        { name: 'db', status: 'ok', required: true },
        { name: 'cache', status: 'fail', required: false },
      ],
    );
    for (const check of body.checks) {
      assert.equal(typeof check['latency_ms'], 'number');
      assert.equal(check['error'], undefined, 'error details stay in /health/detailed');
    }
  });

  it('answers 200 with an empty list when no check is registered', async () => {
    const { app } = buildTestApp();
    const res = await app.inject({ method: 'GET', url: '/ready' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ready', checks: [] });
  });

  it('answers 503 when a required check fails', async () => {
    const checks = new ReadinessChecks().register('db', down);
    const { app } = buildTestApp({ checks });
    const res = await app.inject({ method: 'GET', url: '/ready' });
    assert.equal(res.statusCode, 503);
    const body = res.json<{ status: string; checks: Record<string, unknown>[] }>();
    assert.equal(body.status, 'unavailable');
    assert.deepEqual(Object.keys(body.checks[0] ?? {}), [
      'name',
      'status',
      'required',
      'latency_ms',
    ]);
  });

  it('answers 503 when a required check times out', async () => {
    const checks = new ReadinessChecks().register('db', () => sleep(1000), { timeoutMs: 30 });
    const { app } = buildTestApp({ checks });
    const res = await app.inject({ method: 'GET', url: '/ready' });
    assert.equal(res.statusCode, 503);
  });

  it('answers 503 while starting', async () => {
    const { app } = buildTestApp({ lifecycle: new StillStarting() });
    const res = await app.inject({ method: 'GET', url: '/ready' });
    assert.equal(res.statusCode, 503);
    assert.deepEqual(res.json(), { status: 'starting', checks: [] });
  });

  it('answers 503 as soon as draining starts, without running checks', async () => {
    let runs = 0;
    const checks = new ReadinessChecks().register('db', () => {
      runs += 1;
      return healthy();
    });
    const lifecycle = new Lifecycle();
    const { app } = buildTestApp({ checks, lifecycle });
    assert.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200);
    lifecycle.startDraining();
    const res = await app.inject({ method: 'GET', url: '/ready' });
    assert.equal(res.statusCode, 503);
    assert.deepEqual(res.json(), { status: 'draining', checks: [] });
    assert.equal(runs, 1);
  });
});

describe('GET /health/detailed (diagnostics)', () => {
  it('reports version, environment, uptime and every check with its latency', async () => {
    const checks = new ReadinessChecks().register('db', () => sleep(20));
    const { app } = buildTestApp({ checks });
    const res = await app.inject({ method: 'GET', url: '/health/detailed' });
    assert.equal(res.statusCode, 200);
    const body = res.json<Record<string, unknown>>();
    assert.equal(body['status'], 'ok');
    assert.equal(body['phase'], 'ready');
    assert.equal(body['version'], '1.2.3-test');
    assert.equal(body['service'], SERVICE_NAME);
    assert.equal(body['environment'], 'development');
    assert.equal(typeof body['uptime_seconds'], 'number');
    assert.ok(!Number.isNaN(Date.parse(String(body['timestamp']))));
    assert.deepEqual(Object.keys(body).sort(), [
      'checks',
      'environment',
      'phase',
      'service',
      'status',
      'timestamp',
      'uptime_seconds',
      'version',
    ]);
    const [db] = body['checks'] as Record<string, unknown>[];
    assert.deepEqual(Object.keys(db ?? {}), ['name', 'status', 'required', 'latency_ms']);
    assert.equal(db?.['name'], 'db');
    assert.equal(db['status'], 'ok');
    const latency = Number(db['latency_ms']);
    assert.ok(latency >= 15, `latency ${String(latency)} ms measured`);
  });

  it('is 200 "degraded" when only an optional check fails, with its error', async () => {
    const checks = new ReadinessChecks().register('cache', down, { required: false });
    const { app } = buildTestApp({ checks });
    const res = await app.inject({ method: 'GET', url: '/health/detailed' });
    assert.equal(res.statusCode, 200);
    const body = res.json<{ status: string; checks: { error?: string }[] }>();
    assert.equal(body.status, 'degraded');
    assert.equal(body.checks[0]?.error, 'connection refused');
  });

  it('is 503 "unavailable" when a required check fails', async () => {
    const checks = new ReadinessChecks().register('db', down);
    const { app } = buildTestApp({ checks });
    const res = await app.inject({ method: 'GET', url: '/health/detailed' });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json<{ status: string }>().status, 'unavailable');
  });

  it('follows the checks only, whatever the phase: 200 "ok" while draining', async () => {
    const lifecycle = new Lifecycle();
    const { app } = buildTestApp({ lifecycle });
    await app.ready();
    lifecycle.startDraining();
    const res = await app.inject({ method: 'GET', url: '/health/detailed' });
    assert.equal(res.statusCode, 200);
    const body = res.json<{ status: string; phase: string }>();
    assert.deepEqual([body.status, body.phase], ['ok', 'draining']);
  });
});
