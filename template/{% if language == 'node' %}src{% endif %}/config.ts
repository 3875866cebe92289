// Configuration comes only from environment variables (twelve-factor). They are validated once, at
// start, and every problem is reported together so that one failed start shows everything to fix.
import { z } from 'zod';

import { DEFAULT_PORT } from './service.js';

export const APP_ENVS = ['development', 'staging', 'production'] as const;
export const LOG_LEVELS = ['debug', 'info', 'warning', 'error'] as const;

export type AppEnv = (typeof APP_ENVS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  port: number;
  /** The port of the operational endpoints; undefined: `port` serves them too. */
  managementPort?: number | undefined;
  appEnv: AppEnv;
  logLevel: LogLevel;
  appVersion: string;
  shutdownDelaySeconds: number;
  shutdownTimeoutSeconds: number;
}

// A number from the environment: digits only (so that '' or '1e3' are refused), then a range.
const numeric = (pattern: RegExp, what: string, min: number, max: number) => {
  const error = `must be ${what} from ${String(min)} to ${String(max)}`;
  return z
    .string()
    .regex(pattern, { error })
    .transform(Number)
    .refine((n) => n >= min && n <= max, { error });
};
const wholeNumber = (min: number, max: number) => numeric(/^\d+$/, 'a whole number', min, max);
const seconds = (min: number, max: number) =>
  numeric(/^\d+(\.\d+)?$/, 'a number of seconds', min, max);

const oneOf = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(', ')}` });

// An empty value is an error, not a default, because it is almost always a broken ConfigMap or
// secret reference; MANAGEMENT_PORT alone may be empty, which means "unset" (everything on PORT).
// APP_ENV fails closed: unset means production; `make run` and .env.example set development.
const schema = z
  .object({
    PORT: wholeNumber(1, 65535).default(DEFAULT_PORT),
    MANAGEMENT_PORT: z.preprocess(
      (value) => (value === '' ? undefined : value),
      wholeNumber(1024, 65535).optional(),
    ),
    APP_ENV: oneOf(APP_ENVS).default('production'),
    LOG_LEVEL: oneOf(LOG_LEVELS).default('info'),
    APP_VERSION: z
      .string()
      .regex(/^[\w.+-]{1,128}$/, {
        error: 'must be 1 to 128 letters, digits or . _ + - (a version or commit)',
      })
      .default('dev'),
    SHUTDOWN_DELAY_SECONDS: seconds(0, 300).default(5),
    SHUTDOWN_TIMEOUT_SECONDS: seconds(1, 300).default(20),
  })
  .refine((values) => values.MANAGEMENT_PORT !== values.PORT, {
    path: ['MANAGEMENT_PORT'],
    error: 'must differ from PORT',
    // Compared even when other variables are bad, so that one failed start names them all.
    when: ({ issues }) =>
      !issues.some((issue) => ['PORT', 'MANAGEMENT_PORT'].includes(String(issue.path?.[0]))),
  });

export interface ConfigProblem {
  variable: string;
  message: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(`invalid configuration: ${problems.map((p) => `${p.variable} ${p.message}`).join('; ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

// The bad value is repeated to make the mistake obvious: none of these variables holds a secret.
// A secret added to the schema must not be echoed here.
function received(value: string | undefined): string {
  if (value === undefined) return ' (not set)';
  const shown = value.length > 40 ? `${value.slice(0, 40)}...` : value;
  return ` (got ${JSON.stringify(shown)})`;
}

/** Reads and validates the configuration; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const variable = String(issue.path[0] ?? 'environment');
      return { variable, message: `${issue.message}${received(env[variable])}` };
    });
    throw new ConfigError(problems);
  }
  const values = result.data;
  return {
    port: values.PORT,
    managementPort: values.MANAGEMENT_PORT,
    appEnv: values.APP_ENV,
    logLevel: values.LOG_LEVEL,
    appVersion: values.APP_VERSION,
    shutdownDelaySeconds: values.SHUTDOWN_DELAY_SECONDS,
    shutdownTimeoutSeconds: values.SHUTDOWN_TIMEOUT_SECONDS,
  };
}
