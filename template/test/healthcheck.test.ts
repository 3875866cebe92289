// The image's HEALTHCHECK script, run as Docker runs it: a process whose exit code is the verdict.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { after, describe, it } from 'node:test';

import { exited, freePort } from './helpers.js';

async function healthcheck(port: number, managementPort = ''): Promise<number | null> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/healthcheck.ts'], {
    env: { ...process.env, PORT: String(port), MANAGEMENT_PORT: managementPort },
    stdio: 'ignore',
  });
  return exited(child);
}

async function serving(status: number): Promise<number> {
  const server = createServer((_req, res) => {
    res.writeHead(status).end();
  });
  after(() => server.close());
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(address !== null && typeof address === 'object' ? address.port : 0);
    });
  });
}

describe('healthcheck script', () => {
  it('exits 0 when /health answers 200', async () => {
    assert.equal(await healthcheck(await serving(200)), 0);
  });

  it('exits 1 when /health answers otherwise', async () => {
    assert.equal(await healthcheck(await serving(503)), 1);
  });

  it('asks MANAGEMENT_PORT when it is set', async () => {
    const nothing = await freePort();
    assert.equal(await healthcheck(nothing, String(await serving(200))), 0);
    assert.equal(await healthcheck(await serving(200), String(nothing)), 1);
  });

  it('exits 1 when nothing listens', async () => {
    assert.equal(await healthcheck(await freePort()), 1);
  });
});
