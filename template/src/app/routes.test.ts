// Team-owned, like routes.ts next to it: test your endpoints here.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SERVICE_NAME } from '../service.js';
import { buildTestApp } from '../../test/helpers.js';

describe('GET /', () => {
  it('names the service and its version', async () => {
    const { app } = buildTestApp();
    const res = await app.inject({ method: 'GET', url: '/' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { name: SERVICE_NAME, version: '1.2.3-test' });
  });
});
