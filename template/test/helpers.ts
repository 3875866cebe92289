// Shared by the tests: a valid configuration, an app whose log lines are captured, a free port,
// a plain HTTP GET (no connection pooling, so that shutdown tests see exactly their requests).
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import type { FastifyInstance } from 'fastify';

import { type BuildOptions, buildApp } from '../src/app.js';
import type { Config } from '../src/config.js';

export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    port: 3000,
    appEnv: 'development',
    logLevel: 'debug',
    appVersion: '1.2.3-test',
    shutdownDelaySeconds: 0,
    shutdownTimeoutSeconds: 5,
    ...overrides,
  };
}

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** The JSON log lines of a process's output (one object per line). */
export const jsonLines = (output: string): LogLine[] =>
  output
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as LogLine);

export interface TestApp {
  app: FastifyInstance;
  logs: LogLine[];
}

export function buildTestApp(options: Partial<BuildOptions> = {}): TestApp {
  const logs: LogLine[] = [];
  const app = buildApp({
    config: testConfig(),
    logStream: {
      write: (line: string) => {
        logs.push(JSON.parse(line) as LogLine);
      },
    },
    ...options,
  });
  return { app, logs };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

export interface Answer {
  status: number;
  body: string;
}

export async function get(port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const started = new Set<ChildProcess>();

/** Starts `src/server.ts` in a child process, as `node dist/server.js` would run. */
export function startServer(env: Record<string, string>): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  child.once('exit', () => started.delete(child));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return Object.assign(child, { output: () => output });
}

/** Kills whatever a failed test left running, so that the test file can end. */
export function killStartedServers(): void {
  for (const child of started) child.kill('SIGKILL');
}

export async function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      resolve(code);
    });
  });
}

export async function waitFor(
  condition: () => Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`condition not met within ${String(timeoutMs)} ms`);
}
