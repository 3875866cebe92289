// The container image's HEALTHCHECK (`node dist/healthcheck.js`): exit 0 when GET /health on this
// container answers 200 within two seconds, 1 otherwise. Needs no curl or wget in the image.
// It asks MANAGEMENT_PORT when set (the operational endpoints are served only there), else PORT.
import { request } from 'node:http';

import { DEFAULT_PORT } from './service.js';

const portFrom = (value: string | undefined): number | undefined =>
  value === undefined || value === '' ? undefined : Number(value);
const port =
  portFrom(process.env['MANAGEMENT_PORT']) ?? portFrom(process.env['PORT']) ?? DEFAULT_PORT;

const req = request(
  { host: '127.0.0.1', port, path: '/health', timeout: 2000, agent: false },
  (res) => {
    res.resume();
    if (res.statusCode === 200) process.exit(0);
    process.stderr.write(`healthcheck failed: /health answered ${String(res.statusCode)}\n`);
    process.exit(1);
  },
);
req.on('timeout', () => {
  req.destroy(new Error('timed out'));
});
req.on('error', (err) => {
  process.stderr.write(`healthcheck failed: ${err.message}\n`);
  process.exit(1);
});
req.end();
