import { readFileSync } from 'node:fs';
import { delimiter } from 'node:path';
import type { ConfigProblem } from '../domain/errors.ts';
import { DEPLOYMENT_MODES, LOG_LEVELS, MESSAGING_BACKENDS } from './schema.ts';

/**
 * The environment variables of the seed's Docker Compose and Kubernetes files, and OpenTelemetry's
 * OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME, applied over the files.
 * Precedence, highest first (documented in docs/configuration.md, tested in test/unit/config/):
 *   1. these variables        2. environments/<TASKER_ENV>/*.toml        3. base/*.toml        4. schema defaults
 * Where two variables set the same key, the first named wins: DATABASE_URL over DATABASE_URL_FILE (both set
 * is an error), TASKER_DEPLOYMENT_MODE over DEPLOYMENT_MODE, LOG_LEVEL over RUST_LOG.
 */
export interface Override {
  variable: string;
  path: readonly string[];
  value: unknown;
}

export type Env = Readonly<Record<string, string | undefined>>;

function set(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value;
}

/** RUST_LOG holds directives like `info` or `tasker=debug,warn`: the bare one is the global level. */
export function levelFromRustLog(value: string): string | undefined {
  const directives = value.split(',').map((d) => d.trim().toLowerCase());
  const global = directives.find((d) => d !== '' && !d.includes('='));
  const level = global ?? directives.map((d) => d.split('=')[1]).find((l) => l !== undefined && l !== '');
  if (level === undefined) return undefined;
  return level === 'off' ? 'silent' : level;
}

export function environmentOverrides(env: Env, problems: ConfigProblem[]): Override[] {
  const overrides: Override[] = [];
  const problem = (variable: string, message: string): void => {
    problems.push({ source: `environment variable ${variable}`, path: '', message });
  };

  const databaseUrl = set(env, 'DATABASE_URL');
  const databaseUrlFile = set(env, 'DATABASE_URL_FILE');
  if (databaseUrl !== undefined && databaseUrlFile !== undefined) {
    problem('DATABASE_URL_FILE', 'both DATABASE_URL and DATABASE_URL_FILE are set: keep only one');
  } else if (databaseUrl !== undefined) {
    overrides.push({ variable: 'DATABASE_URL', path: ['database', 'url'], value: databaseUrl.trim() });
  } else if (databaseUrlFile !== undefined) {
    try {
      const secret = readFileSync(databaseUrlFile, 'utf8').trim();
      if (secret === '') problem('DATABASE_URL_FILE', `the file ${databaseUrlFile} is empty`);
      else overrides.push({ variable: 'DATABASE_URL_FILE', path: ['database', 'url'], value: secret });
    } catch (error) {
      problem(
        'DATABASE_URL_FILE',
        `cannot read ${databaseUrlFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
  }

  const backend = set(env, 'TASKER_MESSAGING_BACKEND');
  if (backend !== undefined) {
    const normalized = backend.trim().toLowerCase();
    if ((MESSAGING_BACKENDS as readonly string[]).includes(normalized)) {
      overrides.push({
        variable: 'TASKER_MESSAGING_BACKEND',
        path: ['messaging', 'backend'],
        value: normalized,
      });
    } else {
      problem('TASKER_MESSAGING_BACKEND', `expected "pgmq" or "rabbitmq", found ${JSON.stringify(backend)}`);
    }
  }

  const rabbitUrl = set(env, 'RABBITMQ_URL');
  if (rabbitUrl !== undefined)
    overrides.push({ variable: 'RABBITMQ_URL', path: ['rabbitmq', 'url'], value: rabbitUrl.trim() });

  const modeVariable =
    set(env, 'TASKER_DEPLOYMENT_MODE') !== undefined ? 'TASKER_DEPLOYMENT_MODE' : 'DEPLOYMENT_MODE';
  const mode = set(env, modeVariable);
  if (mode !== undefined) {
    const trimmed = mode.trim();
    if ((DEPLOYMENT_MODES as readonly string[]).includes(trimmed)) {
      // A process runs one role; the variable sets the mode of whichever role it runs.
      overrides.push({ variable: modeVariable, path: ['orchestration', 'deployment_mode'], value: trimmed });
      overrides.push({ variable: modeVariable, path: ['worker', 'deployment_mode'], value: trimmed });
    } else {
      problem(
        modeVariable,
        `expected one of ${DEPLOYMENT_MODES.map((m) => `"${m}"`).join(', ')}, found ${JSON.stringify(mode)}`,
      );
    }
  }

  const namespaces = set(env, 'WORKER_NAMESPACES');
  if (namespaces !== undefined) {
    const list = namespaces
      .split(',')
      .map((ns) => ns.trim())
      .filter((ns) => ns !== '');
    overrides.push({ variable: 'WORKER_NAMESPACES', path: ['worker', 'namespaces'], value: list });
  }

  const handlersModule = set(env, 'TASKER_HANDLERS_MODULE');
  if (handlersModule !== undefined) {
    overrides.push({
      variable: 'TASKER_HANDLERS_MODULE',
      path: ['worker', 'handlers_module'],
      value: handlersModule.trim(),
    });
  }

  const templatePath = set(env, 'TASKER_TEMPLATE_PATH');
  if (templatePath !== undefined) {
    const paths = templatePath
      .split(delimiter)
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '');
    overrides.push({ variable: 'TASKER_TEMPLATE_PATH', path: ['worker', 'template_paths'], value: paths });
  }

  const levelVariable = set(env, 'LOG_LEVEL') !== undefined ? 'LOG_LEVEL' : 'RUST_LOG';
  const rawLevel = set(env, levelVariable);
  if (rawLevel !== undefined) {
    const level = levelVariable === 'RUST_LOG' ? levelFromRustLog(rawLevel) : rawLevel.trim().toLowerCase();
    if (level !== undefined && (LOG_LEVELS as readonly string[]).includes(level)) {
      overrides.push({ variable: levelVariable, path: ['telemetry', 'log_level'], value: level });
    } else {
      problem(
        levelVariable,
        `expected a log level (${LOG_LEVELS.join(', ')}), found ${JSON.stringify(rawLevel)}`,
      );
    }
  }

  const authEnabled = set(env, 'TASKER_AUTH_ENABLED');
  if (authEnabled !== undefined) {
    const normalized = authEnabled.trim().toLowerCase();
    if (normalized === 'true' || normalized === 'false') {
      // A process runs one role; like the deployment mode, the variable sets whichever role it runs.
      for (const role of ['orchestration', 'worker'])
        overrides.push({
          variable: 'TASKER_AUTH_ENABLED',
          path: [role, 'web', 'auth', 'enabled'],
          value: normalized === 'true',
        });
    } else {
      problem('TASKER_AUTH_ENABLED', `expected "true" or "false", found ${JSON.stringify(authEnabled)}`);
    }
  }

  // The OpenTelemetry SDK's own variables, so a collector set up for other services needs nothing new.
  const otlpEndpoint = set(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (otlpEndpoint !== undefined) {
    overrides.push({
      variable: 'OTEL_EXPORTER_OTLP_ENDPOINT',
      path: ['telemetry', 'tracing', 'otlp_endpoint'],
      value: otlpEndpoint.trim(),
    });
  }
  const serviceName = set(env, 'OTEL_SERVICE_NAME');
  if (serviceName !== undefined) {
    overrides.push({
      variable: 'OTEL_SERVICE_NAME',
      path: ['telemetry', 'service_name'],
      value: serviceName.trim(),
    });
  }
  return overrides;
}
