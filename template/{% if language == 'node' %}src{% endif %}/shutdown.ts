// The graceful shutdown sequence, in the order Kubernetes needs it:
//   1. readiness answers 503 at once, so endpoints and load balancers stop sending new requests;
//   2. the server keeps serving for SHUTDOWN_DELAY_SECONDS while they catch up;
//   3. it stops accepting connections and lets in-flight requests finish, for at most
//      SHUTDOWN_TIMEOUT_SECONDS; whatever is still open then is cut.
import { setTimeout as sleep } from 'node:timers/promises';

import type { FastifyInstance } from 'fastify';

import type { Lifecycle } from './lifecycle.js';

export interface ShutdownOptions {
  delaySeconds: number;
  timeoutSeconds: number;
  reason?: string;
}

export type ShutdownResult = 'drained' | 'timed-out';

export async function shutdown(
  app: FastifyInstance,
  lifecycle: Lifecycle,
  { delaySeconds, timeoutSeconds, reason = 'shutdown' }: ShutdownOptions,
): Promise<ShutdownResult> {
  lifecycle.startDraining();
  app.log.info({ reason, delaySeconds }, 'draining: readiness now answers 503');
  await sleep(delaySeconds * 1000);

  app.log.info({ timeoutSeconds }, 'closing: no new connections, finishing in-flight requests');
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<ShutdownResult>((resolve) => {
    timer = setTimeout(() => {
      resolve('timed-out');
    }, timeoutSeconds * 1000);
  });
  const closed = app.close().then((): ShutdownResult => 'drained');
  const result = await Promise.race([closed, deadline]);
  clearTimeout(timer);
  if (result === 'timed-out') {
    app.log.warn({ timeoutSeconds }, 'drain timed out: closing the remaining connections');
    app.server.closeAllConnections();
  } else {
    app.log.info('drained: every in-flight request finished');
  }
  return result;
}
