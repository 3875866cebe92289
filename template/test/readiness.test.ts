import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';

import { ReadinessChecks } from '../src/readiness.js';

const healthy = () => Promise.resolve();

describe('readiness checks', () => {
  it('runs every check concurrently and reports status and latency', async () => {
    const checks = new ReadinessChecks()
      .register('fast', healthy)
      .register('slow', () => sleep(100))
      .register('broken', () => Promise.reject(new Error('connection refused')), {
        required: false,
      });
    const started = performance.now();
    const results = await checks.run();
    assert.ok(performance.now() - started < 190, 'checks run concurrently');
    assert.deepEqual(
      results.map(({ name, status, required, error }) => ({ name, status, required, error })),
      [
        { name: 'fast', status: 'ok', required: true, error: undefined },
        { name: 'slow', status: 'ok', required: true, error: undefined },
        { name: 'broken', status: 'fail', required: false, error: 'connection refused' },
      ],
    );
    const slow = results.find((r) => r.name === 'slow');
    assert.ok(slow !== undefined && slow.latency_ms >= 90, 'latency is measured');
  });

  it('fails a check that outlives its timeout and aborts its signal', async () => {
    let aborted = false;
    const checks = new ReadinessChecks().register(
      'hanging',
      (signal) =>
        new Promise(() => {
          signal.addEventListener('abort', () => {
            aborted = true;
          });
        }),
      { timeoutMs: 50 },
    );
    const [result] = await checks.run();
    assert.equal(result?.status, 'fail');
    assert.equal(result.error, 'timed out after 50 ms');
    assert.ok(result.latency_ms >= 45 && result.latency_ms < 1000);
    assert.ok(aborted, 'the check was told to give up');
  });

  it('reports a thrown non-Error value', async () => {
    const checks = new ReadinessChecks().register('odd', () => {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- code that throws non-Errors exists
      throw 'plain string';
    });
    const [result] = await checks.run();
    assert.equal(result?.error, 'plain string');
  });

  it('always gives a failed check an error text', async () => {
    const checks = new ReadinessChecks().register('quiet', () => Promise.reject(new Error('')));
    const [result] = await checks.run();
    assert.equal(result?.error, 'failed');
  });

  it('refuses duplicate names and non-positive timeouts', () => {
    const checks = new ReadinessChecks().register('db', healthy);
    assert.throws(() => checks.register('db', healthy), /already registered/);
    assert.throws(() => checks.register('cache', healthy, { timeoutMs: 0 }), /positive/);
    assert.deepEqual(checks.names, ['db']);
  });
});
