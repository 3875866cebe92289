import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { buildTestApp, testConfig } from './helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('request logs', () => {
  it('writes one JSON line per request with its request id, and no query string', async () => {
    const { app, logs } = buildTestApp();
    const res = await app.inject({ method: 'GET', url: '/?token=secret-value' });
    const requestId = String(res.headers['x-request-id']);
    assert.match(requestId, UUID);
    const lines = logs.filter((line) => line['request_id'] === requestId);
    assert.equal(lines.length, 1, JSON.stringify(logs));
    const [line] = lines;
    assert.equal(line?.level, 'info');
    assert.equal(line.msg, 'request');
    assert.equal(line['method'], 'GET');
    assert.equal(line['path'], '/');
    assert.equal(line['route'], '/');
    assert.equal(line['status'], 200);
    assert.equal(typeof line['duration_ms'], 'number');
    assert.equal(line['version'], '1.2.3-test');
    assert.match(String(line['time']), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.doesNotMatch(JSON.stringify(logs), /secret-value/);
  });

  it('names the route of a request no route answered "unmatched", as the metrics do', async () => {
    const { app, logs } = buildTestApp();
    const res = await app.inject({ url: '/no/such/path?x=1' });
    const line = logs.find((l) => l['request_id'] === res.headers['x-request-id']);
    assert.equal(line?.['route'], 'unmatched');
    assert.equal(line['path'], '/no/such/path');
    assert.equal(line['status'], 404);
  });

  it('keeps a well-formed incoming request id and replaces a malformed one', async () => {
    const { app } = buildTestApp();
    const kept = await app.inject({ url: '/', headers: { 'x-request-id': 'edge-42.a:b' } });
    assert.equal(kept.headers['x-request-id'], 'edge-42.a:b');
    const replaced = await app.inject({
      url: '/',
      headers: { 'x-request-id': 'bad id\nforged log line' },
    });
    assert.match(String(replaced.headers['x-request-id']), UUID);
  });

  it('logs probes and scrapes at debug only, so they stay out of info logs', async () => {
    const { app, logs } = buildTestApp({ config: testConfig({ logLevel: 'info' }) });
    for (const url of ['/health', '/ready', '/health/detailed', '/metrics']) {
      await app.inject({ url });
    }
    assert.deepEqual(
      logs.filter((line) => line.msg === 'request'),
      [],
    );
    await app.inject({ url: '/' });
    assert.equal(logs.filter((line) => line.msg === 'request').length, 1);
  });

  it('writes the LOG_LEVEL words as levels ("warning", not pino\'s "warn") and drops info lines', async () => {
    const { app, logs } = buildTestApp({ config: testConfig({ logLevel: 'warning' }) });
    await app.inject({ url: '/' });
    app.log.warn('careful');
    app.log.error('broken');
    app.log.fatal('worse');
    assert.deepEqual(
      logs.map((line) => [line.level, line.msg]),
      [
        ['warning', 'careful'],
        ['error', 'broken'],
        ['error', 'worse'],
      ],
    );
  });

  it('writes pino\'s trace lines as "debug"', async () => {
    const { app, logs } = buildTestApp({ config: testConfig({ logLevel: 'debug' }) });
    app.log.level = 'trace';
    app.log.trace('finest');
    assert.equal(logs.find((line) => line.msg === 'finest')?.level, 'debug');
  });

  it('redacts authorization and cookie headers wherever they are logged', async () => {
    const { app, logs } = buildTestApp();
    app.get('/echo-headers', async (request) => {
      request.log.info({ req: { headers: request.headers } }, 'request with headers');
      request.log.info({ headers: request.headers }, 'bare headers');
      return { ok: true };
    });
    await app.inject({
      url: '/echo-headers',
      headers: { authorization: 'Bearer top-secret', cookie: 'session=also-secret', accept: '*/*' },
    });
    const text = JSON.stringify(logs);
    assert.doesNotMatch(text, /top-secret|also-secret/);
    const line = logs.find((l) => l.msg === 'bare headers');
    assert.deepEqual(line?.['headers'], {
      authorization: '[redacted]',
      cookie: '[redacted]',
      accept: '*/*',
      'user-agent': 'lightMyRequest',
      host: 'localhost:80',
    });
  });
});

describe('errors', () => {
  it('answers unknown routes with the contract 404 body', async () => {
    const { app } = buildTestApp();
    const res = await app.inject({ url: '/missing' });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(res.json(), {
      error: 'not_found',
      request_id: String(res.headers['x-request-id']),
    });
  });

  it('hides internal error details from the caller and logs them with the request id', async () => {
    const { app, logs } = buildTestApp();
    app.get('/boom', async () => {
      throw new Error('database password is hunter2');
    });
    const res = await app.inject({ url: '/boom' });
    assert.equal(res.statusCode, 500);
    const requestId = String(res.headers['x-request-id']);
    assert.deepEqual(res.json(), { error: 'internal_error', request_id: requestId });
    assert.equal(res.headers['x-frame-options'], 'DENY', 'errors carry the security headers');
    const logged = logs.find((l) => l.msg === 'request failed');
    assert.equal(logged?.level, 'error');
    assert.equal(logged['request_id'], requestId);
    assert.match(JSON.stringify(logged['err']), /hunter2/, 'the log line has the exception');
  });

  it('tells the caller what was wrong with a bad request', async () => {
    const { app } = buildTestApp();
    app.post('/items', async (request) => request.body);
    const res = await app.inject({
      method: 'POST',
      url: '/items',
      headers: { 'content-type': 'application/json' },
      payload: '{not json',
    });
    assert.equal(res.statusCode, 400);
    const body = res.json<{ error: string; message: string; request_id: string }>();
    assert.equal(body.error, 'bad_request');
    assert.match(body.message, /JSON/);
    assert.equal(body.request_id, res.headers['x-request-id']);
  });
});
