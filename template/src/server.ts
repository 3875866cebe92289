// The process entry point (`node dist/server.js`): validate the configuration, start tracing when
// it is on, listen, and shut down gracefully on SIGTERM (Kubernetes, docker stop) or SIGINT
// (Ctrl-C). Nothing else.
import { ConfigError, type Config, loadConfig } from './config.js';
import { Lifecycle } from './lifecycle.js';
import { shutdown } from './shutdown.js';
import { startTracing } from './tracing.js';

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      // One line naming every bad variable, then a non-zero exit: the pod crash-loops visibly.
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

const config = readConfig();
// Before the application is loaded: the HTTP instrumentation must see Fastify create its servers.
// With tracing off nothing of OpenTelemetry is loaded.
const tracing = await startTracing(config);
const { buildApps } = await import('./app.js');
const lifecycle = new Lifecycle();
const { app, management } = buildApps({ config, lifecycle });
tracing?.useLogger(app.log);
const instances = management === undefined ? [app] : [app, management];

let stopping = false;
function onSignal(signal: NodeJS.Signals): void {
  if (stopping) {
    // A repeated SIGTERM (a wrapper such as make forwarding the one it got) changes nothing;
    // a second Ctrl-C means "now".
    if (signal === 'SIGINT') {
      app.log.warn({ signal }, 'second interrupt: exiting without draining');
      process.exit(1);
    }
    app.log.info({ signal }, 'already shutting down');
    return;
  }
  stopping = true;
  shutdown(instances, lifecycle, {
    delaySeconds: config.shutdownDelaySeconds,
    timeoutSeconds: config.shutdownTimeoutSeconds,
    reason: signal,
    flush: tracing && ((timeoutMs) => tracing.shutdown(timeoutMs)),
  }).then(
    (result) => {
      process.exit(result === 'drained' ? 0 : 1);
    },
    (err: unknown) => {
      app.log.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
}
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);

try {
  // The management port first: probes find it answering (/ready "starting") until the
  // application is ready and listening.
  if (management !== undefined && config.managementPort !== undefined) {
    await management.listen({ port: config.managementPort, host: '0.0.0.0' });
  }
  await app.listen({ port: config.port, host: '0.0.0.0' });
} catch (err) {
  app.log.fatal({ err }, 'could not start');
  process.exit(1);
}
