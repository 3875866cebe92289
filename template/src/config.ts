// Configuration comes only from environment variables (twelve-factor). They are validated once, at
// start, and every problem is reported together so that one failed start shows everything to fix.
//
// Validated by a few small functions rather than a schema library: loading zod (a hundred
// modules) for these seven variables took about 75 ms of CPU at every start, a quarter of what
// the service spent before it could answer (issue 15). A variable added here is one line in
// VARIABLES and one field of Config.
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

/** A value read from the environment, or what is wrong with it. */
type Result<T> = { value: T; error?: undefined } | { value?: undefined; error: string };
/** Reads one variable; `raw` is undefined when it is not set. */
type Variable<T> = (raw: string | undefined) => Result<T>;

// A number from the environment: digits only (so that '' or '1e3' are refused), then a range.
const numeric = (pattern: RegExp, what: string, min: number, max: number) => {
  const error = `must be ${what} from ${String(min)} to ${String(max)}`;
  return (raw: string): Result<number> => {
    const value = Number(raw);
    return pattern.test(raw) && value >= min && value <= max ? { value } : { error };
  };
};
const wholeNumber = (min: number, max: number) => numeric(/^\d+$/, 'a whole number', min, max);
const seconds = (min: number, max: number) =>
  numeric(/^\d+(\.\d+)?$/, 'a number of seconds', min, max);

const oneOf = <T extends string>(values: readonly T[]) => {
  const error = `must be one of ${values.join(', ')}`;
  return (raw: string): Result<T> => {
    const value = values.find((v) => v === raw);
    return value === undefined ? { error } : { value };
  };
};

const matching =
  (pattern: RegExp, error: string) =>
  (raw: string): Result<string> =>
    pattern.test(raw) ? { value: raw } : { error };

// An empty value is an error, not a default, because it is almost always a broken ConfigMap or
// secret reference; MANAGEMENT_PORT alone may be empty, which means "unset" (everything on PORT).
const withDefault =
  <T>(read: (raw: string) => Result<T>, fallback: T): Variable<T> =>
  (raw) =>
    raw === undefined ? { value: fallback } : read(raw);
const optional =
  <T>(read: (raw: string) => Result<T>): Variable<T | undefined> =>
  (raw) =>
    raw === undefined || raw === '' ? { value: undefined } : read(raw);

// APP_ENV fails closed: unset means production; `make run` and .env.example set development.
// The keys are the variables the service reads (`make readiness` compares them with .env.example).
const VARIABLES = {
  PORT: withDefault(wholeNumber(1, 65535), DEFAULT_PORT),
  MANAGEMENT_PORT: optional(wholeNumber(1024, 65535)),
  APP_ENV: withDefault(oneOf(APP_ENVS), 'production'),
  LOG_LEVEL: withDefault(oneOf(LOG_LEVELS), 'info'),
  APP_VERSION: withDefault(
    matching(
      /^[\w.+-]{1,128}$/,
      'must be 1 to 128 letters, digits or . _ + - (a version or commit)',
    ),
    'dev',
  ),
  SHUTDOWN_DELAY_SECONDS: withDefault(seconds(0, 300), 5),
  SHUTDOWN_TIMEOUT_SECONDS: withDefault(seconds(1, 300), 20),
};

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
// A secret added to VARIABLES must not be echoed here.
function received(value: string | undefined): string {
  if (value === undefined) return ' (not set)';
  const shown = value.length > 40 ? `${value.slice(0, 40)}...` : value;
  return ` (got ${JSON.stringify(shown)})`;
}

/** Reads and validates the configuration; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: ConfigProblem[] = [];
  const read = <T>(variable: keyof typeof VARIABLES, parse: Variable<T>): T | undefined => {
    const result = parse(env[variable]);
    if (result.error !== undefined) {
      problems.push({ variable, message: `${result.error}${received(env[variable])}` });
    }
    return result.value;
  };
  const port = read('PORT', VARIABLES.PORT);
  const managementPort = read('MANAGEMENT_PORT', VARIABLES.MANAGEMENT_PORT);
  const appEnv = read('APP_ENV', VARIABLES.APP_ENV);
  const logLevel = read('LOG_LEVEL', VARIABLES.LOG_LEVEL);
  const appVersion = read('APP_VERSION', VARIABLES.APP_VERSION);
  const shutdownDelaySeconds = read('SHUTDOWN_DELAY_SECONDS', VARIABLES.SHUTDOWN_DELAY_SECONDS);
  const shutdownTimeoutSeconds = read(
    'SHUTDOWN_TIMEOUT_SECONDS',
    VARIABLES.SHUTDOWN_TIMEOUT_SECONDS,
  );
  // Compared even when other variables are bad (both ports must be valid), so that one failed
  // start names them all.
  if (port !== undefined && managementPort !== undefined && managementPort === port) {
    problems.push({
      variable: 'MANAGEMENT_PORT',
      message: `must differ from PORT${received(env['MANAGEMENT_PORT'])}`,
    });
  }
  if (
    problems.length > 0 ||
    port === undefined ||
    appEnv === undefined ||
    logLevel === undefined ||
    appVersion === undefined ||
    shutdownDelaySeconds === undefined ||
    shutdownTimeoutSeconds === undefined
  ) {
    throw new ConfigError(problems);
  }
  return {
    port,
    managementPort,
    appEnv,
    logLevel,
    appVersion,
    shutdownDelaySeconds,
    shutdownTimeoutSeconds,
  };
}
