// Team-owned: the service's own endpoints. `copier update` never overwrites this file.
import type { FastifyPluginAsync } from 'fastify';

import type { Config } from '../config.js';
import { SERVICE_NAME } from '../service.js';

export interface RoutesOptions {
  config: Config;
}

const routes: FastifyPluginAsync<RoutesOptions> = async (app, { config }) => {
  app.get('/', async () => ({ name: SERVICE_NAME, version: config.appVersion }));
};

export default routes;
