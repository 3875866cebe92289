import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { HttpMetrics } from '../src/plugins/metrics.js';
import { buildTestApp } from './helpers.js';

describe('GET /metrics', () => {
  it('exposes process metrics and per-route request counts and latencies', async () => {
    const { app } = buildTestApp();
    await app.inject({ method: 'GET', url: '/' });
    await app.inject({ method: 'GET', url: '/' });
    await app.inject({ method: 'GET', url: '/no/such/page?id=1' });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const text = res.body;
    assert.match(text, /^http_requests_total\{method="GET",route="\/",status_code="200"\} 2$/m);
    assert.match(
      text,
      /^http_requests_total\{method="GET",route="unmatched",status_code="404"\} 1$/m,
    );
    assert.match(
      text,
      /^http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/",status_code="200"\} \d+$/m,
    );
    assert.match(
      text,
      /^http_request_duration_seconds_count\{method="GET",route="\/",status_code="200"\} 2$/m,
    );
    assert.doesNotMatch(text, /no\/such\/page/, 'raw URLs never become label values');
    assert.match(text, /^process_cpu_user_seconds_total \d/m);
    assert.match(text, /^nodejs_eventloop_lag_seconds \d/m);
  });

  it('keeps each app’s metrics apart', async () => {
    const first = buildTestApp().app;
    const second = buildTestApp().app;
    await first.inject({ method: 'GET', url: '/' });
    const res = await second.inject({ method: 'GET', url: '/metrics' });
    assert.doesNotMatch(res.body, /route="\/",status_code="200"/);
  });

  it('fills cumulative buckets, +Inf alone above 10 s, and clears on a registry reset', async () => {
    const metrics = new HttpMetrics();
    metrics.observe('GET', '/', 200, 0.002);
    metrics.observe('GET', '/', 200, 0.3);
    metrics.observe('BREW', '/', 200, 20);
    const text = await metrics.registry.metrics();
    const bucket = (le: string, method = 'GET') =>
      new RegExp(
        `^http_request_duration_seconds_bucket\\{le="${le.replace('+', '\\+')}",method="${method}",route="/",status_code="200"\\} (\\d+)$`,
        'm',
      ).exec(text)?.[1];
    assert.deepEqual(
      ['0.005', '0.25', '0.5', '10', '+Inf'].map((le) => bucket(le)),
      ['1', '1', '2', '2', '2'],
    );
    assert.deepEqual([bucket('10', 'OTHER'), bucket('+Inf', 'OTHER')], ['0', '1']);
    assert.match(
      text,
      /^http_request_duration_seconds_sum\{method="GET",route="\/",status_code="200"\} 0\.302\d*$/m,
    );
    assert.match(text, /^http_requests_total\{method="OTHER",route="\/",status_code="200"\} 1$/m);
    metrics.registry.resetMetrics();
    assert.doesNotMatch(await metrics.registry.metrics(), /^http_/m);
  });
});
