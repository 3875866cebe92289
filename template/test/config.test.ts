import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ConfigError, loadConfig } from '../src/config.js';
import { DEFAULT_PORT } from '../src/service.js';

function problemsOf(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('the configuration was accepted');
}

describe('configuration', () => {
  it('uses the documented defaults when nothing is set, failing closed to production', () => {
    assert.deepEqual(loadConfig({}), {
      port: DEFAULT_PORT,
      managementPort: undefined,
      appEnv: 'production',
      logLevel: 'info',
      appVersion: 'dev',
      shutdownDelaySeconds: 5,
      shutdownTimeoutSeconds: 20,
    });
  });

  it('reads every variable and ignores unrelated ones', () => {
    const config = loadConfig({
      PORT: '8081',
      MANAGEMENT_PORT: '9090',
      APP_ENV: 'production',
      LOG_LEVEL: 'warning',
      APP_VERSION: 'v1.4.0+sha.abc123',
      SHUTDOWN_DELAY_SECONDS: '0.5',
      SHUTDOWN_TIMEOUT_SECONDS: '30',
      UNRELATED: 'ignored',
    });
    assert.deepEqual(config, {
      port: 8081,
      managementPort: 9090,
      appEnv: 'production',
      logLevel: 'warning',
      appVersion: 'v1.4.0+sha.abc123',
      shutdownDelaySeconds: 0.5,
      shutdownTimeoutSeconds: 30,
    });
  });

  it('reports every bad variable at once, naming each with the value it got', () => {
    const error = problemsOf({
      PORT: '70000',
      APP_ENV: 'prod',
      LOG_LEVEL: 'verbose',
      APP_VERSION: 'has spaces',
      SHUTDOWN_DELAY_SECONDS: '-1',
      SHUTDOWN_TIMEOUT_SECONDS: 'soon',
    });
    assert.deepEqual(
      error.problems.map((p) => p.variable),
      [
        'PORT',
        'APP_ENV',
        'LOG_LEVEL',
        'APP_VERSION',
        'SHUTDOWN_DELAY_SECONDS',
        'SHUTDOWN_TIMEOUT_SECONDS',
      ],
    );
    assert.match(error.message, /^invalid configuration: /);
    assert.match(error.message, /PORT must be a whole number from 1 to 65535 \(got "70000"\)/);
    assert.match(error.message, /APP_ENV must be one of development, staging, production/);
    assert.match(
      error.message,
      /LOG_LEVEL must be one of debug, info, warning, error \(got "verbose"\)/,
    );
    assert.match(
      error.message,
      /SHUTDOWN_TIMEOUT_SECONDS must be a number of seconds from 1 to 300/,
    );
    assert.equal(error.message.split('\n').length, 1, 'one line');
  });

  it('refuses empty values instead of silently using a default', () => {
    const error = problemsOf({ PORT: '', LOG_LEVEL: '', APP_VERSION: '' });
    assert.deepEqual(
      error.problems.map((p) => p.variable),
      ['PORT', 'LOG_LEVEL', 'APP_VERSION'],
    );
  });

  it('takes an empty MANAGEMENT_PORT for unset: everything is served on PORT', () => {
    assert.equal(loadConfig({ MANAGEMENT_PORT: '' }).managementPort, undefined);
  });

  it('refuses a MANAGEMENT_PORT out of range or equal to PORT, naming it', () => {
    const low = problemsOf({ MANAGEMENT_PORT: '80' });
    assert.deepEqual(
      low.problems.map((p) => p.variable),
      ['MANAGEMENT_PORT'],
    );
    assert.match(low.message, /MANAGEMENT_PORT must be a whole number from 1024 to 65535/);
    const same = problemsOf({ PORT: '9090', MANAGEMENT_PORT: '9090', LOG_LEVEL: 'loud' });
    assert.deepEqual(
      same.problems.map((p) => p.variable),
      ['LOG_LEVEL', 'MANAGEMENT_PORT'],
    );
    assert.match(same.message, /MANAGEMENT_PORT must differ from PORT \(got "9090"\)/);
  });

  it('refuses numbers in other notations and shortens long values', () => {
    const error = problemsOf({ PORT: '1e3', SHUTDOWN_DELAY_SECONDS: '9'.repeat(60) });
    assert.deepEqual(
      error.problems.map((p) => p.variable),
      ['PORT', 'SHUTDOWN_DELAY_SECONDS'],
    );
    assert.match(error.message, /\(got "9{40}\.\.\."\)/);
  });
});
