// Tracing off (the default), in this process: nothing of OpenTelemetry is loaded, and a request
// carrying a traceparent is served and logged as if tracing did not exist.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';

import { loggerOptions } from '../src/logger.js';
import { startTracing, tracingEnabled } from '../src/tracing.js';
import { buildTestApp, testConfig } from './helpers.js';

const ENDPOINT = 'http://127.0.0.1:4318';

// The OpenTelemetry packages this process has loaded (they are CommonJS: require.cache). The API
// alone is no tracing: prom-client loads it for its exemplars, with or without tracing.
const SDK = /node_modules[\\/](@opentelemetry[\\/](?!api[\\/])|@fastify[\\/]otel[\\/])/;
const loadedSdk = (): string[] =>
  Object.keys(createRequire(import.meta.url).cache).filter((path) => SDK.test(path));

describe('tracing off', () => {
  it('is on only with an endpoint, and not disabled', () => {
    assert.equal(tracingEnabled({}), false);
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }), false);
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }), false);
    assert.equal(tracingEnabled({ OTEL_SERVICE_NAME: 'orders' }), false);
    assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT }), true);
    assert.equal(
      tracingEnabled({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${ENDPOINT}/v1/traces` }),
      true,
    );
    assert.equal(
      tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_SDK_DISABLED: 'TRUE' }),
      false,
    );
    assert.equal(
      tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_SDK_DISABLED: 'false' }),
      true,
    );
    assert.equal(
      tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_TRACES_EXPORTER: 'none' }),
      false,
    );
    assert.equal(
      tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT, OTEL_TRACES_EXPORTER: 'otlp' }),
      true,
    );
  });

  it('loads no OpenTelemetry package and adds nothing to the logs', async () => {
    const config = testConfig();
    assert.equal(await startTracing(config, {}), undefined);
    assert.equal(
      await startTracing(config, {
        OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT,
        OTEL_SDK_DISABLED: 'true',
      }),
      undefined,
    );
    assert.equal('mixin' in loggerOptions(config), false, 'no per-line work in the logger');

    const { app, logs } = buildTestApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const address = app.server.address();
      assert.ok(address !== null && typeof address === 'object');
      const res = await fetch(`http://127.0.0.1:${String(address.port)}/`, {
        headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      });
      assert.equal(res.status, 200);
      const line = logs.find((l) => l.msg === 'request');
      assert.ok(line);
      assert.equal(line['trace_id'], undefined);
      assert.equal(line['span_id'], undefined);
      assert.equal(res.headers.get('traceparent'), null);
    } finally {
      await app.close();
    }
    assert.deepEqual(loadedSdk(), []);
  });
});
