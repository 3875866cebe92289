// The service contract in-process: headers, error bodies, limits and the management instance.
// The template's shared suite (tests/test_contract.py) checks the same against the running service.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { buildApps } from '../src/app.js';
import { CONTENT_SECURITY_POLICY } from '../src/plugins/security-headers.js';
import { buildTestApp, testConfig } from './helpers.js';

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

// Headers that security middlewares (helmet) send by default and the other languages do not.
const NOT_SENT = [
  'strict-transport-security',
  'origin-agent-cluster',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
  'x-powered-by',
];

const OPS = ['/health', '/ready', '/health/detailed', '/metrics'];

describe('security headers', () => {
  it('sends exactly the contract set on every response, errors and 404s included', async () => {
    const { app } = buildTestApp();
    app.get('/boom', async () => {
      throw new Error('boom');
    });
    assert.equal(CONTENT_SECURITY_POLICY, SECURITY_HEADERS['content-security-policy']);
    const requests = [
      ...['/', ...OPS, '/missing', '/boom'].map((url) => ({ method: 'GET' as const, url })),
      { method: 'DELETE' as const, url: '/health' },
      { method: 'POST' as const, url: '/', headers: { 'content-length': String(2 ** 21) } },
    ];
    for (const request of requests) {
      const res = await app.inject(request);
      const label = `${request.method} ${request.url} (${String(res.statusCode)})`;
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
        assert.equal(res.headers[name], value, `${label}: ${name}`);
      }
      for (const name of NOT_SENT) assert.equal(res.headers[name], undefined, `${label}: ${name}`);
      assert.ok(res.headers['x-request-id'], `${label}: x-request-id`);
    }
  });
});

describe('operational endpoints', () => {
  it('answer HEAD like GET and any other method with 405, Allow: GET, HEAD', async () => {
    const { app } = buildTestApp();
    for (const url of OPS) {
      assert.equal((await app.inject({ method: 'HEAD', url })).statusCode, 200, url);
      for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'] as const) {
        const res = await app.inject({ method, url });
        assert.equal(res.statusCode, 405, `${method} ${url}`);
        assert.equal(res.headers.allow, 'GET, HEAD');
        assert.deepEqual(res.json(), {
          error: 'method_not_allowed',
          request_id: String(res.headers['x-request-id']),
        });
      }
    }
    // Elsewhere a missing method is a plain 404.
    assert.equal((await app.inject({ method: 'DELETE', url: '/' })).statusCode, 404);
  });
});

describe('request body limit', () => {
  it('refuses a Content-Length over 1 MiB before routing, with 413 payload_too_large', async () => {
    const { app } = buildTestApp();
    for (const url of ['/', '/missing', '/health']) {
      const res = await app.inject({
        method: 'POST',
        url,
        headers: { 'content-length': String(1024 * 1024 + 1), 'content-type': 'text/plain' },
        payload: 'x',
      });
      assert.equal(res.statusCode, 413, url);
      assert.equal(res.headers.connection, 'close');
      assert.deepEqual(res.json(), {
        error: 'payload_too_large',
        request_id: String(res.headers['x-request-id']),
      });
    }
  });

  it('refuses a body over 1 MiB while reading it, with the same body', async () => {
    const { app } = buildTestApp();
    app.post('/items', async () => ({ ok: true }));
    const res = await app.inject({
      method: 'POST',
      url: '/items',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ data: 'x'.repeat(1024 * 1024) }),
    });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json<{ error: string }>().error, 'payload_too_large');
  });
});

describe('metric labels', () => {
  it('count other methods as OTHER and requests no route answered as unmatched', async () => {
    const { app } = buildTestApp();
    await app.inject({ method: 'PROPFIND', url: '/anything' });
    await app.inject({ method: 'POST', url: '/ready' });
    const text = (await app.inject({ url: '/metrics' })).body;
    assert.match(
      text,
      /^http_requests_total\{method="OTHER",route="unmatched",status_code="404"\} 1$/m,
    );
    assert.match(
      text,
      /^http_requests_total\{method="POST",route="unmatched",status_code="405"\} 1$/m,
    );
    assert.doesNotMatch(text, /PROPFIND|anything/);
  });
});

describe('MANAGEMENT_PORT', () => {
  it('serves the operational endpoints only on the management instance', async () => {
    const { app, management } = buildApps({
      config: testConfig({ managementPort: 9090 }),
      logStream: { write: () => undefined },
    });
    assert.ok(management !== undefined);
    await app.ready();
    for (const url of OPS) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 404, `the application port answers ${url} 404`);
      assert.equal(res.json<{ error: string }>().error, 'not_found');
      assert.equal((await app.inject({ method: 'POST', url })).statusCode, 404);
      assert.equal((await management.inject({ url })).statusCode, 200, url);
    }
    assert.equal((await app.inject({ url: '/' })).statusCode, 200);
    assert.equal((await management.inject({ url: '/' })).statusCode, 404);
    const post = await management.inject({ method: 'POST', url: '/health' });
    assert.equal(post.statusCode, 405);
    assert.equal(post.headers['x-frame-options'], 'DENY');

    // One registry: the management instance counts the application's requests and its own.
    const text = (await management.inject({ url: '/metrics' })).body;
    assert.match(text, /^http_requests_total\{method="GET",route="\/",status_code="200"\} 1$/m);
    assert.match(
      text,
      /^http_requests_total\{method="GET",route="unmatched",status_code="404"\} \d+$/m,
    );
    assert.match(
      text,
      /^http_requests_total\{method="GET",route="\/health",status_code="200"\} 1$/m,
    );
    await Promise.all([app.close(), management.close()]);
  });
});
