// The graceful shutdown sequence, in the order Kubernetes needs it:
//   1. readiness answers 503 at once, so endpoints and load balancers stop sending new requests;
//   2. the server keeps serving for SHUTDOWN_DELAY_SECONDS while they catch up;
//   3. it stops accepting connections and lets in-flight requests finish, for at most
//      SHUTDOWN_TIMEOUT_SECONDS; whatever is still open then is cut;
//   4. what is held in memory (the spans not yet exported) is flushed in what is left of it.
// With MANAGEMENT_PORT set, both instances go through each step together (they share the
// lifecycle, so /ready answers 503 on the management port from step 1).
import { setTimeout as sleep } from 'node:timers/promises';

import type { FastifyInstance } from 'fastify';

import type { Lifecycle } from './lifecycle.js';

export interface ShutdownOptions {
  delaySeconds: number;
  timeoutSeconds: number;
  reason?: string;
  /** Step 4, given the milliseconds left of the timeout; true when it finished in them. */
  flush?: ((timeoutMs: number) => Promise<boolean>) | undefined;
}

export type ShutdownResult = 'drained' | 'timed-out';

/** Shuts down the application and, when given, the management instance. */
export async function shutdown(
  apps: FastifyInstance | FastifyInstance[],
  lifecycle: Lifecycle,
  { delaySeconds, timeoutSeconds, reason = 'shutdown', flush }: ShutdownOptions,
): Promise<ShutdownResult> {
  const instances = Array.isArray(apps) ? apps : [apps];
  const [first] = instances;
  if (first === undefined) throw new Error('shutdown: no instance to close');
  const log = first.log;

  lifecycle.startDraining();
  log.info({ reason, delaySeconds }, 'draining: readiness now answers 503');
  await sleep(delaySeconds * 1000);

  log.info({ timeoutSeconds }, 'closing: no new connections, finishing in-flight requests');
  const closing = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<ShutdownResult>((resolve) => {
    timer = setTimeout(() => {
      resolve('timed-out');
    }, timeoutSeconds * 1000);
  });
  const closed = Promise.all(instances.map((app) => app.close())).then(
    (): ShutdownResult => 'drained',
  );
  const result = await Promise.race([closed, deadline]);
  clearTimeout(timer);
  if (result === 'timed-out') {
    log.warn({ timeoutSeconds }, 'drain timed out: closing the remaining connections');
    for (const app of instances) app.server.closeAllConnections();
  } else {
    log.info('drained: every in-flight request finished');
  }
  const leftMs = timeoutSeconds * 1000 - (Date.now() - closing);
  if (flush !== undefined && leftMs > 0) {
    if (await flush(leftMs)) log.info('flushed: the spans held were exported');
    else log.warn({ leftMs }, 'flush timed out: the spans still held are lost');
  }
  return result;
}
