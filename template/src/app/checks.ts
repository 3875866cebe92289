// Team-owned: register one readiness check per dependency the service needs in order to serve.
// `copier update` never overwrites this file.
import type { RegisterChecks } from '../readiness.js';

export const registerChecks: RegisterChecks = () => {
  // No dependency yet. A check resolves when its dependency answers and throws when it does not:
  //
  //   export const registerChecks: RegisterChecks = (checks, config) => {
  //     checks.register('database', async (signal) => {
  //       await pool.query({ text: 'SELECT 1', signal });
  //     }, { timeoutMs: 500 });
  //   };
  //
  // A dependency the service can live without (a cache) takes { required: false }: its failure
  // shows in /health/detailed without taking the pod out of the load balancer.
};
