// The real process: `src/server.ts` in a child process, as `node dist/server.js` runs in the image.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import {
  exited,
  freePort,
  get,
  jsonLines,
  killStartedServers,
  startServer,
  waitFor,
} from './helpers.js';

after(killStartedServers);

describe('server process', { timeout: 180_000 }, () => {
  it('refuses to start on a bad configuration, naming every bad variable', async () => {
    const child = startServer({ LOG_LEVEL: 'verbose', PORT: 'http' });
    assert.equal(await exited(child), 1);
    const output = child.output();
    assert.match(output, /invalid configuration: /);
    assert.match(output, /LOG_LEVEL must be one of debug, info, warning, error \(got "verbose"\)/);
    assert.match(output, /PORT must be a whole number/);
  });

  it('on SIGTERM turns unready, keeps serving for the delay, then exits 0', async () => {
    const port = await freePort();
    const child = startServer({
      PORT: String(port),
      LOG_LEVEL: 'info',
      APP_VERSION: '9.9.9',
      SHUTDOWN_DELAY_SECONDS: '3',
      SHUTDOWN_TIMEOUT_SECONDS: '5',
    });
    await waitFor(async () => (await get(port, '/ready')).status === 200);
    const detailed = await get(port, '/health/detailed');
    assert.equal((JSON.parse(detailed.body) as { version: string }).version, '9.9.9');

    const signalled = Date.now();
    child.kill('SIGTERM');
    await waitFor(async () => (await get(port, '/ready')).status === 503, 2500);
    assert.equal((await get(port, '/health')).status, 200, 'still serving during the delay');
    assert.equal((await get(port, '/')).status, 200);

    assert.equal(await exited(child), 0);
    assert.ok(Date.now() - signalled >= 3000, 'waited SHUTDOWN_DELAY_SECONDS before closing');
    const lines = jsonLines(child.output());
    assert.ok(
      lines.every((line) => typeof line.level === 'string'),
      'JSON lines only',
    );
    const messages = lines.map((line) => line.msg);
    assert.ok(messages.some((m) => m.startsWith('draining')));
    assert.ok(messages.some((m) => m.startsWith('drained')));
  });

  it('with MANAGEMENT_PORT serves the operational endpoints there and drains both ports', async () => {
    const port = await freePort();
    const managementPort = await freePort();
    const child = startServer({
      PORT: String(port),
      MANAGEMENT_PORT: String(managementPort),
      SHUTDOWN_DELAY_SECONDS: '1',
    });
    await waitFor(async () => (await get(managementPort, '/ready')).status === 200);
    assert.equal((await get(port, '/')).status, 200);
    for (const path of ['/health', '/ready', '/health/detailed', '/metrics']) {
      assert.equal((await get(port, path)).status, 404, `PORT answers ${path} 404`);
    }
    const metrics = await get(managementPort, '/metrics');
    assert.match(
      metrics.body,
      /^http_requests_total\{method="GET",route="\/",status_code="200"\} 1$/m,
    );

    child.kill('SIGTERM');
    await waitFor(async () => (await get(managementPort, '/ready')).status === 503, 2500);
    assert.equal((await get(port, '/')).status, 200, 'the application still serves');
    assert.equal(await exited(child), 0);
    await assert.rejects(get(managementPort, '/health'), /ECONNREFUSED/);
    await assert.rejects(get(port, '/'), /ECONNREFUSED/);
  });

  it('ignores a repeated SIGTERM but exits at once on a second Ctrl-C', async () => {
    const port = await freePort();
    const child = startServer({ PORT: String(port), SHUTDOWN_DELAY_SECONDS: '30' });
    await waitFor(async () => (await get(port, '/health')).status === 200);
    child.kill('SIGTERM');
    await waitFor(async () => (await get(port, '/ready')).status === 503);
    child.kill('SIGTERM');
    await waitFor(async () => child.output().includes('already shutting down'));
    assert.equal((await get(port, '/health')).status, 200, 'still serving through the delay');
    child.kill('SIGINT');
    assert.equal(await exited(child), 1);
    assert.match(child.output(), /second interrupt: exiting without draining/);
  });

  it('exits non-zero when the port is taken', async () => {
    const port = await freePort();
    const first = startServer({ PORT: String(port) });
    await waitFor(async () => (await get(port, '/health')).status === 200);
    const second = startServer({ PORT: String(port) });
    assert.equal(await exited(second), 1);
    assert.match(second.output(), /EADDRINUSE/);
    first.kill('SIGKILL');
    await exited(first);
  });
});
