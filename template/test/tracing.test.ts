// Tracing on, in this process (node --test runs each test file in its own process): the real SDK
// set-up of src/otel.ts, with its batch processor, exporting to an in-memory exporter instead of
// OTLP. Requests go over real HTTP (the server span comes from the HTTP instrumentation; inject()
// bypasses it), with fetch, which the HTTP instrumentation does not trace as a client.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, beforeEach, describe, it } from 'node:test';

import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import type { FastifyInstance } from 'fastify';

import { buildApps } from '../src/app.js';
import { startOtel } from '../src/otel.js';
import { SERVICE_NAME } from '../src/service.js';
import type { Tracing } from '../src/tracing.js';
import { type LogLine, testConfig, waitFor } from './helpers.js';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_ID = 'b7ad6b7169203331';
const OPS = ['/health', '/ready', '/health/detailed', '/metrics'];

process.env['OTEL_BSP_SCHEDULE_DELAY'] = '20';
process.env['OTEL_RESOURCE_ATTRIBUTES'] = 'k8s.pod.name=test-pod';
delete process.env['OTEL_SERVICE_NAME'];

const exporter = new InMemorySpanExporter();
let tracing: Tracing;

interface Running {
  logs: LogLine[];
  url: (path: string) => string;
  managementUrl: (path: string) => string;
  close: () => Promise<void>;
}

async function listen(app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

/** The application (and, with `management`, the management instance) on free ports. */
async function running(management = false): Promise<Running> {
  const logs: LogLine[] = [];
  const { app, management: ops } = buildApps({
    config: testConfig({ managementPort: management ? 1 : undefined, appEnv: 'staging' }),
    logStream: { write: (line: string) => logs.push(JSON.parse(line) as LogLine) },
  });
  app.get('/items/:id', async (request) => {
    request.log.info('looking the item up');
    return { id: (request.params as { id: string }).id };
  });
  app.get('/boom', async () => {
    throw new Error('kaput');
  });
  const port = await listen(app);
  const opsPort = ops === undefined ? port : await listen(ops);
  return {
    logs,
    url: (path) => `http://127.0.0.1:${String(port)}${path}`,
    managementUrl: (path) => `http://127.0.0.1:${String(opsPort)}${path}`,
    close: async () => {
      await Promise.all([app.close(), ops?.close()]);
    },
  };
}

const serverSpans = (): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((span) => span.kind === SpanKind.SERVER);

/** Waits for the server span of a request to the given route, and returns it. */
async function serverSpan(name: string): Promise<ReadableSpan> {
  let found: ReadableSpan | undefined;
  await waitFor(async () => {
    found = serverSpans().find((span) => span.name === name);
    return found !== undefined;
  }, 5000);
  assert.ok(found);
  return found;
}

describe('tracing on', () => {
  before(() => {
    tracing = startOtel(testConfig({ appEnv: 'staging' }), { exporter });
  });
  after(async () => {
    await tracing.shutdown(1000);
  });
  beforeEach(() => {
    exporter.reset();
  });

  it('makes one server span per request, named by the route pattern, with the resource', async () => {
    const service = await running();
    try {
      const res = await fetch(service.url('/items/42?q=1'));
      assert.equal(res.status, 200);
      const span = await serverSpan('GET /items/:id');
      assert.equal(span.kind, SpanKind.SERVER);
      assert.equal(span.attributes['http.request.method'], 'GET');
      assert.equal(span.attributes['http.route'], '/items/:id');
      assert.equal(span.attributes['http.response.status_code'], 200);
      assert.equal(span.status.code, SpanStatusCode.UNSET);
      assert.equal(
        span.parentSpanContext,
        undefined,
        'a request without traceparent starts a trace',
      );
      assert.equal(serverSpans().length, 1);
      const resource = span.resource.attributes;
      assert.equal(resource['service.name'], SERVICE_NAME);
      assert.equal(resource['service.version'], '1.2.3-test');
      assert.equal(resource['deployment.environment.name'], 'staging');
      assert.equal(resource['k8s.pod.name'], 'test-pod');
      // The counterpart of test/tracing-off.test.ts: on, the SDK is loaded.
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      assert.ok(loaded.some((path) => path.includes('@opentelemetry/sdk-trace-node')));
    } finally {
      await service.close();
    }
  });

  it('marks a 5xx answer as an error', async () => {
    const service = await running();
    try {
      assert.equal((await fetch(service.url('/boom'))).status, 500);
      const span = await serverSpan('GET /boom');
      assert.equal(span.attributes['http.response.status_code'], 500);
      assert.equal(span.status.code, SpanStatusCode.ERROR);
    } finally {
      await service.close();
    }
  });

  for (const management of [false, true]) {
    it(`creates no span for the operational endpoints (${management ? 'with' : 'without'} MANAGEMENT_PORT)`, async () => {
      const service = await running(management);
      try {
        for (const path of OPS) {
          await (await fetch(service.managementUrl(path))).text();
          await (await fetch(service.managementUrl(`${path}?x=1`), { method: 'HEAD' })).text();
          await (await fetch(service.url(path))).text();
        }
        // The batch processor exports in order: once the marker is there, any earlier span is too.
        await fetch(service.url('/items/marker'));
        await serverSpan('GET /items/:id');
        const names = exporter.getFinishedSpans().map((span) => span.name);
        assert.deepEqual(
          exporter
            .getFinishedSpans()
            .filter(
              (span) => span.spanContext().traceId !== serverSpans()[0]?.spanContext().traceId,
            )
            .map((span) => span.name),
          [],
          `only the marker's trace: ${names.join(', ')}`,
        );
      } finally {
        await service.close();
      }
    });
  }

  it('continues an incoming W3C traceparent', async () => {
    const service = await running();
    try {
      await fetch(service.url('/items/7'), {
        headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` },
      });
      const span = await serverSpan('GET /items/:id');
      assert.equal(span.spanContext().traceId, TRACE_ID);
      assert.equal(span.parentSpanContext?.spanId, PARENT_ID);
      assert.equal(span.parentSpanContext.isRemote, true);
    } finally {
      await service.close();
    }
  });

  it('writes the ids of the active span on the log lines of a request', async () => {
    const service = await running();
    try {
      const res = await fetch(service.url('/items/9'), {
        headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` },
      });
      const requestId = res.headers.get('x-request-id');
      const server = await serverSpan('GET /items/:id');
      const spans = new Map(
        exporter.getFinishedSpans().map((span) => [span.spanContext().spanId, span]),
      );
      const lines = service.logs.filter((line) => line['request_id'] === requestId);
      assert.deepEqual(
        lines.map((line) => line.msg),
        ['looking the item up', 'request'],
      );
      for (const line of lines) {
        assert.equal(line['trace_id'], TRACE_ID);
        assert.match(String(line['span_id']), /^[0-9a-f]{16}$/);
        assert.ok(
          spans.has(String(line['span_id'])),
          `${String(line['span_id'])} is a span of the trace`,
        );
      }
      const requestLine = lines.find((line) => line.msg === 'request');
      assert.equal(
        requestLine?.['span_id'],
        server.spanContext().spanId,
        'the request line: the server span',
      );
    } finally {
      await service.close();
    }
  });

  it('follows the caller that did not sample: no span, no ids in the logs', async () => {
    const service = await running();
    try {
      const res = await fetch(service.url('/items/3'), {
        headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-00` },
      });
      const requestId = res.headers.get('x-request-id');
      await fetch(service.url('/items/marker'));
      const marker = await serverSpan('GET /items/:id');
      assert.notEqual(marker.spanContext().traceId, TRACE_ID);
      assert.equal(serverSpans().length, 1);
      const line = service.logs.find((l) => l['request_id'] === requestId && l.msg === 'request');
      assert.ok(line, JSON.stringify(service.logs));
      assert.equal(line['trace_id'], undefined);
      assert.equal(line['span_id'], undefined);
    } finally {
      await service.close();
    }
  });
});
