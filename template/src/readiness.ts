// The registry of readiness checks. A team registers one check per dependency the service needs
// to serve traffic (database, cache, downstream API) in src/app/checks.ts. Every check runs on
// each /ready and /health/detailed call, concurrently, each bounded by its own timeout.
import type { Config } from './config.js';

/** A check resolves when the dependency is usable and rejects (or throws) when it is not. */
export type ReadinessCheck = (signal: AbortSignal) => Promise<unknown>;

export interface CheckOptions {
  /** Milliseconds before the check counts as failed; keep it below the probe's timeoutSeconds. */
  timeoutMs?: number;
  /** A failing required check makes /ready answer 503; an optional one only reports "degraded". */
  required?: boolean;
}

export interface CheckResult {
  name: string;
  status: 'ok' | 'fail';
  required: boolean;
  // snake_case: this object is the check of the service contract's bodies as it is.
  latency_ms: number;
  /** Only when the check failed; /ready leaves it out. */
  error?: string;
}

interface Registered {
  name: string;
  check: ReadinessCheck;
  timeoutMs: number;
  required: boolean;
}

export const DEFAULT_CHECK_TIMEOUT_MS = 1000;

/** The shape of src/app/checks.ts: registers the team's checks when the application is built. */
export type RegisterChecks = (checks: ReadinessChecks, config: Config) => void;

export class ReadinessChecks {
  private readonly checks = new Map<string, Registered>();

  register(name: string, check: ReadinessCheck, options: CheckOptions = {}): this {
    if (this.checks.has(name)) throw new Error(`readiness check "${name}" is already registered`);
    const timeoutMs = options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw new Error(`readiness check "${name}": timeoutMs must be positive`);
    this.checks.set(name, { name, check, timeoutMs, required: options.required ?? true });
    return this;
  }

  get names(): string[] {
    return [...this.checks.keys()];
  }

  /** Runs every check concurrently; never rejects. */
  async run(): Promise<CheckResult[]> {
    return Promise.all([...this.checks.values()].map(runOne));
  }
}

async function runOne({ name, check, timeoutMs, required }: Registered): Promise<CheckResult> {
  const controller = new AbortController();
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`timed out after ${String(timeoutMs)} ms`));
    }, timeoutMs);
  });
  let error: string | undefined;
  try {
    await Promise.race([check(controller.signal), timeout]);
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(timer);
  }
  const latency_ms = Math.round((performance.now() - started) * 10) / 10;
  return error === undefined
    ? { name, status: 'ok', required, latency_ms }
    : { name, status: 'fail', required, latency_ms, error: error || 'failed' };
}
