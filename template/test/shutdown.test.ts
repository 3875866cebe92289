import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';

import { Lifecycle } from '../src/lifecycle.js';
import { shutdown } from '../src/shutdown.js';
import { type Answer, buildTestApp, get } from './helpers.js';

async function listening(slowMs: number) {
  const lifecycle = new Lifecycle();
  const { app, logs } = buildTestApp({ lifecycle });
  app.get('/slow', async () => {
    await sleep(slowMs);
    return { done: true };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { app, logs, lifecycle, port: address.port };
}

describe('graceful shutdown', () => {
  it('goes unready at once, keeps serving through the delay, then drains in-flight requests', async () => {
    const { app, logs, lifecycle, port } = await listening(1500);
    const inFlight = get(port, '/slow');
    await sleep(50);

    const started = Date.now();
    const done = shutdown(app, lifecycle, {
      delaySeconds: 1,
      timeoutSeconds: 5,
      reason: 'SIGTERM',
    });
    // During the delay: readiness is 503, everything else is still served.
    assert.equal((await get(port, '/ready')).status, 503);
    assert.equal((await get(port, '/health')).status, 200);
    assert.equal((await get(port, '/')).status, 200);

    assert.equal(await done, 'drained');
    assert.ok(Date.now() - started >= 1400, 'close waited for the request still in flight');
    const answer: Answer = await inFlight;
    assert.equal(answer.status, 200, 'the request begun before SIGTERM completed');
    assert.deepEqual(JSON.parse(answer.body), { done: true });
    await assert.rejects(get(port, '/health'), /ECONNREFUSED/, 'no new connections after close');
    const messages = logs.map((line) => line.msg);
    for (const step of ['draining', 'closing', 'drained']) {
      assert.ok(
        messages.some((m) => m.startsWith(step)),
        `logged "${step}": ${messages.join(' | ')}`,
      );
    }
  });

  it('cuts the requests still running when the drain timeout expires', async () => {
    const { app, lifecycle, port } = await listening(10_000);
    const inFlight = get(port, '/slow');
    await sleep(50);
    const started = Date.now();
    const result = await shutdown(app, lifecycle, { delaySeconds: 0, timeoutSeconds: 0.2 });
    assert.equal(result, 'timed-out');
    assert.ok(Date.now() - started < 2000, 'did not wait for the slow request');
    await assert.rejects(inFlight, /socket hang up|ECONNRESET/);
  });

  it('flushes after the drain, within what is left of the timeout', async () => {
    const { app, logs, lifecycle } = await listening(0);
    const given: number[] = [];
    const result = await shutdown(app, lifecycle, {
      delaySeconds: 0,
      timeoutSeconds: 2,
      flush: async (timeoutMs) => {
        given.push(timeoutMs);
        return true;
      },
    });
    assert.equal(result, 'drained');
    assert.equal(given.length, 1);
    assert.ok((given[0] ?? 0) > 1500 && (given[0] ?? 0) <= 2000, `left: ${String(given[0])}`);
    assert.ok(logs.some((line) => line.msg.startsWith('flushed')));
  });

  it('says so when the flush runs out of time', async () => {
    const { app, logs, lifecycle } = await listening(0);
    await shutdown(app, lifecycle, {
      delaySeconds: 0,
      timeoutSeconds: 1,
      flush: async () => false,
    });
    assert.ok(
      logs.some((line) => line.level === 'warning' && line.msg.startsWith('flush timed out')),
    );
  });
});
