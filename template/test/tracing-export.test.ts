// Tracing in the real process (`src/server.ts` in a child, as `node dist/server.js` runs), with
// the real OTLP/HTTP exporter: against a closed port, a malformed endpoint, and a receiver that
// records what it is sent, to see the spans held flushed on SIGTERM.
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';

import { SERVICE_NAME } from '../src/service.js';
import {
  type LogLine,
  exited,
  freePort,
  jsonLines,
  killStartedServers,
  startServer,
  waitFor,
} from './helpers.js';

after(killStartedServers);

/** Starts the service with tracing on; resolves once it answers. */
async function tracedServer(env: Record<string, string>) {
  const port = await freePort();
  const child = startServer({
    PORT: String(port),
    APP_ENV: 'development',
    LOG_LEVEL: 'info',
    SHUTDOWN_DELAY_SECONDS: '0',
    SHUTDOWN_TIMEOUT_SECONDS: '3',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
    ...env,
  });
  const url = `http://127.0.0.1:${String(port)}`;
  await waitFor(async () => (await fetch(`${url}/health`)).ok);
  return { child, url };
}

/** Times one request, in milliseconds. */
async function timed(url: string): Promise<number> {
  const started = performance.now();
  const res = await fetch(url);
  await res.text();
  assert.equal(res.status, 200);
  return performance.now() - started;
}

const warnings = (output: string): LogLine[] =>
  jsonLines(output).filter((line) => line.level === 'warning');

describe('exporting traces', () => {
  it('drops the spans of an unreachable endpoint with one warning, and never slows a request', async () => {
    const closed = await freePort();
    // a made-up credential in the URL, which the warning must not print
    const endpoint = `http://user:secret@127.0.0.1:${String(closed)}`; // pragma: allowlist secret
    const { child, url } = await tracedServer({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
    const durations: number[] = [];
    // The exporter retries a refused connection for a few seconds before it gives a batch up.
    await waitFor(async () => {
      durations.push(await timed(`${url}/`));
      return warnings(child.output()).length > 0;
    }, 20_000);
    // More batches, more failures: still one line.
    for (let i = 0; i < 20; i += 1) {
      durations.push(await timed(`${url}/`));
      await sleep(50);
    }
    await sleep(500);
    const output = child.output();
    const [warning, ...more] = warnings(output);
    assert.deepEqual(more, [], 'one warning per process');
    assert.ok(warning);
    assert.equal(warning['endpoint'], `http://127.0.0.1:${String(closed)}/v1/traces`);
    assert.match(warning.msg, /spans are being dropped/);
    assert.match(warning.msg, new RegExp(`127\\.0\\.0\\.1:${String(closed)}/v1/traces`));
    assert.equal(warning['trace_id'], undefined, 'the warning belongs to no request');
    assert.doesNotMatch(output, /secret/, 'no credentials from the endpoint in the logs');
    // Every line is JSON: the SDK's own per-batch errors are silenced.
    assert.ok(jsonLines(output).length > 20);
    const slowest = Math.max(...durations.slice(1));
    assert.ok(slowest < 500, `requests are not slowed (slowest ${slowest.toFixed(0)} ms)`);

    // Shutdown is bounded by SHUTDOWN_TIMEOUT_SECONDS even when the flush cannot succeed.
    const stopping = Date.now();
    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
    assert.ok(Date.now() - stopping < 5000, 'exited within the shutdown timeout');
  });

  it('serves with a malformed endpoint, and says once that spans are dropped', async () => {
    const { child, url } = await tracedServer({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' });
    for (let i = 0; i < 5; i += 1) await timed(`${url}/`);
    const [warning, ...more] = warnings(child.output());
    assert.deepEqual(more, []);
    assert.match(String(warning?.msg), /collector:4318.*spans are being dropped/);
    // Spans are still made: the logs carry their ids (log lines reach stdout within 100 ms).
    const requestLine = () => jsonLines(child.output()).find((l) => l.msg === 'request');
    await waitFor(async () => requestLine() !== undefined);
    assert.match(String(requestLine()?.['trace_id']), /^[0-9a-f]{32}$/);
    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
  });

  it('flushes the spans it holds on SIGTERM', async () => {
    const bodies: Buffer[] = [];
    const receiver: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/v1/traces') bodies.push(Buffer.concat(chunks));
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const address = receiver.address();
      assert.ok(address !== null && typeof address === 'object');
      const { child, url } = await tracedServer({
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${String(address.port)}`,
        // Nothing is exported on schedule during the test: only the flush can send the span.
        OTEL_BSP_SCHEDULE_DELAY: '600000',
        APP_VERSION: '4.5.6-flush',
      });
      await timed(`${url}/`);
      await sleep(200);
      assert.equal(bodies.length, 0, 'held, not yet exported');
      child.kill('SIGTERM');
      assert.equal(await exited(child), 0);
      // OTLP protobuf: strings are written as they are, so the span and resource can be found.
      const sent = Buffer.concat(bodies).toString('latin1');
      assert.ok(sent.includes('GET /'), 'the server span');
      assert.ok(sent.includes(SERVICE_NAME), 'service.name');
      assert.ok(sent.includes('4.5.6-flush'), 'service.version');
      const messages = jsonLines(child.output()).map((line) => line.msg);
      assert.ok(
        messages.some((m) => m.startsWith('flushed')),
        messages.join(' | '),
      );
      assert.equal(warnings(child.output()).length, 0);
    } finally {
      receiver.close();
    }
  });
});
