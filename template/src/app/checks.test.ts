// Team-owned, like checks.ts next to it: keep the expected list in step with the checks you register.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { registerChecks } from './checks.js';
import { ReadinessChecks } from '../readiness.js';
import { testConfig } from '../../test/helpers.js';

describe('the readiness checks of this service', () => {
  it('registers the expected checks', () => {
    const checks = new ReadinessChecks();
    registerChecks(checks, testConfig());
    assert.deepEqual(checks.names, []);
  });
});
