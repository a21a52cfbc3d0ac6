import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { environmentOverrides, levelFromRustLog } from '../../../src/config/environmentOverrides.ts';
import type { Env } from '../../../src/config/environmentOverrides.ts';
import type { ConfigProblem } from '../../../src/domain/errors.ts';
import { configRoot, tempDir } from './configTestKit.ts';

/** The shipped base plus a staging file that sets every key the variables override, to prove they win. */
const STAGING = 'environments/staging/overridden.toml';
const stagingRoot = (): ReturnType<typeof configRoot> =>
  configRoot({
    files: {
      [STAGING]: [
        '[database]',
        'url = "postgres://file@file-db:5432/from_file"',
        '[messaging]',
        'backend = "pgmq"',
        '[rabbitmq]',
        'url = "amqp://file@file-mq:5672/%2F"',
        '[orchestration]',
        'deployment_mode = "PollingOnly"',
        '[worker]',
        'deployment_mode = "PollingOnly"',
        'namespaces = ["from_file"]',
        '[telemetry]',
        'log_level = "error"',
        '',
      ].join('\n'),
    },
  });
const load = (env: Env) => stagingRoot().load({ TASKER_ENV: 'staging', ...env });
const problems = (env: Env) => stagingRoot().problems({ TASKER_ENV: 'staging', ...env });

function secretFile(content: string): string {
  const path = join(tempDir(), 'database_url');
  writeFileSync(path, content);
  return path;
}

describe('without any variable', () => {
  it('the staging file decides every overridable key', () => {
    const { config } = load({});
    expect(config.database.url).toBe('postgres://file@file-db:5432/from_file');
    expect(config.messaging.backend).toBe('pgmq');
    expect(config.rabbitmq.url).toBe('amqp://file@file-mq:5672/%2F');
    expect(config.orchestration.deployment_mode).toBe('PollingOnly');
    expect(config.worker.deployment_mode).toBe('PollingOnly');
    expect(config.worker.namespaces).toEqual(['from_file']);
    expect(config.telemetry.log_level).toBe('error');
  });
});

describe('DATABASE_URL and DATABASE_URL_FILE', () => {
  it('DATABASE_URL beats the files (trimmed)', () => {
    const loaded = load({ DATABASE_URL: '  postgres://app:pw@db.internal:5432/tasker \n' });
    expect(loaded.config.database.url).toBe('postgres://app:pw@db.internal:5432/tasker');
    expect(loaded.provenance.get('database.url')).toBe('environment variable DATABASE_URL');
  });

  it('an empty DATABASE_URL counts as unset', () => {
    expect(load({ DATABASE_URL: '' }).config.database.url).toBe('postgres://file@file-db:5432/from_file');
    expect(load({ DATABASE_URL: '   ' }).config.database.url).toBe('postgres://file@file-db:5432/from_file');
  });

  it('DATABASE_URL_FILE is read (a Docker secret), its trailing newline trimmed', () => {
    const file = secretFile('postgres://app:from-secret@db:5432/tasker_production\n');
    const loaded = load({ DATABASE_URL_FILE: file });
    expect(loaded.config.database.url).toBe('postgres://app:from-secret@db:5432/tasker_production');
    expect(loaded.provenance.get('database.url')).toBe('environment variable DATABASE_URL_FILE');
  });

  it('DATABASE_URL_FILE with CRLF and surrounding blank lines is trimmed too', () => {
    const file = secretFile('\r\npglite:/var/lib/tasker\r\n\r\n');
    expect(load({ DATABASE_URL_FILE: file }).config.database.url).toBe('pglite:/var/lib/tasker');
  });

  it('both set is an error, even when they agree', () => {
    const url = 'postgres://app@db/x';
    expect(problems({ DATABASE_URL: url, DATABASE_URL_FILE: secretFile(url) })).toEqual([
      {
        source: 'environment variable DATABASE_URL_FILE',
        path: '',
        message: 'both DATABASE_URL and DATABASE_URL_FILE are set: keep only one',
      },
    ]);
  });

  it('a file that does not exist is an error naming the file and the reason', () => {
    const missing = join(tempDir(), 'no-such-secret');
    expect(problems({ DATABASE_URL_FILE: missing })).toEqual([
      {
        source: 'environment variable DATABASE_URL_FILE',
        path: '',
        message: `cannot read ${missing}: ENOENT`,
      },
    ]);
  });

  it('a directory instead of a file is an error', () => {
    const folder = join(tempDir(), 'secrets');
    mkdirSync(folder);
    expect(problems({ DATABASE_URL_FILE: folder })).toEqual([
      {
        source: 'environment variable DATABASE_URL_FILE',
        path: '',
        message: `cannot read ${folder}: EISDIR`,
      },
    ]);
  });

  it('an empty file is an error', () => {
    const file = secretFile('\n');
    expect(problems({ DATABASE_URL_FILE: file })).toEqual([
      { source: 'environment variable DATABASE_URL_FILE', path: '', message: `the file ${file} is empty` },
    ]);
  });

  it('an invalid URL from DATABASE_URL is blamed on the variable', () => {
    expect(problems({ DATABASE_URL: 'http://db/x' })).toEqual([
      {
        source: 'environment variable DATABASE_URL',
        path: 'database.url',
        message: 'expected a postgres://… or pglite:<folder> URL, found "http://db/x"',
      },
    ]);
  });
});

describe('TASKER_MESSAGING_BACKEND and RABBITMQ_URL', () => {
  it('selects rabbitmq (case and spaces normalized)', () => {
    const loaded = load({ TASKER_MESSAGING_BACKEND: ' RabbitMQ ' });
    expect(loaded.config.messaging.backend).toBe('rabbitmq');
    expect(loaded.provenance.get('messaging.backend')).toBe('environment variable TASKER_MESSAGING_BACKEND');
  });

  it('pgmq is accepted too', () => {
    const root = configRoot({
      files: { 'environments/staging/m.toml': '[messaging]\nbackend = "rabbitmq"\n' },
    });
    expect(
      root.load({ TASKER_ENV: 'staging', TASKER_MESSAGING_BACKEND: 'pgmq' }).config.messaging.backend,
    ).toBe('pgmq');
  });

  it('anything else is an error quoting the value', () => {
    expect(problems({ TASKER_MESSAGING_BACKEND: 'kafka' })).toEqual([
      {
        source: 'environment variable TASKER_MESSAGING_BACKEND',
        path: '',
        message: 'expected "pgmq" or "rabbitmq", found "kafka"',
      },
    ]);
  });

  it('RABBITMQ_URL sets rabbitmq.url over the files', () => {
    const loaded = load({ RABBITMQ_URL: 'amqp://user:password@rabbitmq:5672/%2F' });
    expect(loaded.config.rabbitmq.url).toBe('amqp://user:password@rabbitmq:5672/%2F');
    expect(loaded.provenance.get('rabbitmq.url')).toBe('environment variable RABBITMQ_URL');
  });

  it('an invalid RABBITMQ_URL is blamed on the variable', () => {
    expect(problems({ RABBITMQ_URL: 'rabbitmq:5672' })).toEqual([
      {
        source: 'environment variable RABBITMQ_URL',
        path: 'rabbitmq.url',
        message: 'expected an amqp:// or amqps:// URL, found "rabbitmq:5672"',
      },
    ]);
  });
});

describe('TASKER_DEPLOYMENT_MODE and DEPLOYMENT_MODE', () => {
  it('TASKER_DEPLOYMENT_MODE sets the orchestration and the worker mode', () => {
    const loaded = load({ TASKER_DEPLOYMENT_MODE: 'EventDrivenOnly' });
    expect(loaded.config.orchestration.deployment_mode).toBe('EventDrivenOnly');
    expect(loaded.config.worker.deployment_mode).toBe('EventDrivenOnly');
    expect(loaded.provenance.get('worker.deployment_mode')).toBe(
      'environment variable TASKER_DEPLOYMENT_MODE',
    );
  });

  it("DEPLOYMENT_MODE (the seed's Kubernetes name) does the same", () => {
    const loaded = load({ DEPLOYMENT_MODE: 'Hybrid' });
    expect(loaded.config.orchestration.deployment_mode).toBe('Hybrid');
    expect(loaded.config.worker.deployment_mode).toBe('Hybrid');
    expect(loaded.provenance.get('orchestration.deployment_mode')).toBe(
      'environment variable DEPLOYMENT_MODE',
    );
  });

  it('TASKER_DEPLOYMENT_MODE wins over DEPLOYMENT_MODE', () => {
    const loaded = load({ TASKER_DEPLOYMENT_MODE: 'EventDrivenOnly', DEPLOYMENT_MODE: 'Hybrid' });
    expect(loaded.config.orchestration.deployment_mode).toBe('EventDrivenOnly');
    expect(loaded.provenance.get('orchestration.deployment_mode')).toBe(
      'environment variable TASKER_DEPLOYMENT_MODE',
    );
  });

  it('the losing DEPLOYMENT_MODE is not read at all (an invalid one is no error)', () => {
    expect(
      load({ TASKER_DEPLOYMENT_MODE: 'Hybrid', DEPLOYMENT_MODE: 'nonsense' }).config.worker.deployment_mode,
    ).toBe('Hybrid');
  });

  it('a mode is exact: wrong case is an error naming the variable and the accepted modes', () => {
    expect(problems({ DEPLOYMENT_MODE: 'pollingonly' })).toEqual([
      {
        source: 'environment variable DEPLOYMENT_MODE',
        path: '',
        message: 'expected one of "Hybrid", "EventDrivenOnly", "PollingOnly", found "pollingonly"',
      },
    ]);
    expect(problems({ TASKER_DEPLOYMENT_MODE: 'Polling' })).toEqual([
      {
        source: 'environment variable TASKER_DEPLOYMENT_MODE',
        path: '',
        message: 'expected one of "Hybrid", "EventDrivenOnly", "PollingOnly", found "Polling"',
      },
    ]);
  });
});

describe('WORKER_NAMESPACES', () => {
  it('is a comma list: spaces trimmed, empty entries dropped, order kept', () => {
    const loaded = load({ WORKER_NAMESPACES: ' payments , inventory,, shipping_eu ,' });
    expect(loaded.config.worker.namespaces).toEqual(['payments', 'inventory', 'shipping_eu']);
    expect(loaded.provenance.get('worker.namespaces')).toBe('environment variable WORKER_NAMESPACES');
  });

  it('a single namespace, as in the seed', () => {
    expect(load({ WORKER_NAMESPACES: 'payments' }).config.worker.namespaces).toEqual(['payments']);
  });

  it('an invalid namespace is an error naming its position and the variable', () => {
    expect(problems({ WORKER_NAMESPACES: 'payments, Bad-NS' })).toEqual([
      {
        source: 'environment variable WORKER_NAMESPACES',
        path: 'worker.namespaces[1]',
        message: 'expected namespace names (1-34 lowercase letters, digits, underscores), found "Bad-NS"',
      },
    ]);
  });

  it('a namespace too long for a queue name is an error', () => {
    const long = 'n'.repeat(35);
    expect(problems({ WORKER_NAMESPACES: long })).toEqual([
      {
        source: 'environment variable WORKER_NAMESPACES',
        path: 'worker.namespaces[0]',
        message: `expected namespace names (1-34 lowercase letters, digits, underscores), found "${long}"`,
      },
    ]);
    expect(load({ WORKER_NAMESPACES: long.slice(1) }).config.worker.namespaces).toEqual([long.slice(1)]);
  });
});

describe('LOG_LEVEL and RUST_LOG', () => {
  it.each([
    ['info', 'info'],
    ['tasker=debug,warn', 'warn'],
    ['warn,tasker=debug', 'warn'],
    ['tasker=debug', 'debug'],
    ['off', 'silent'],
    ['TRACE', 'trace'],
  ])('RUST_LOG=%s sets log_level %s', (rustLog, level) => {
    const loaded = load({ RUST_LOG: rustLog });
    expect(loaded.config.telemetry.log_level).toBe(level);
    expect(loaded.provenance.get('telemetry.log_level')).toBe('environment variable RUST_LOG');
  });

  it('LOG_LEVEL sets log_level (case-insensitive)', () => {
    expect(load({ LOG_LEVEL: 'DEBUG' }).config.telemetry.log_level).toBe('debug');
  });

  it('LOG_LEVEL wins over RUST_LOG', () => {
    const loaded = load({ LOG_LEVEL: 'warn', RUST_LOG: 'trace' });
    expect(loaded.config.telemetry.log_level).toBe('warn');
    expect(loaded.provenance.get('telemetry.log_level')).toBe('environment variable LOG_LEVEL');
  });

  it('invalid levels are errors naming the variable and the accepted levels', () => {
    expect(problems({ RUST_LOG: 'loud' })).toEqual([
      {
        source: 'environment variable RUST_LOG',
        path: '',
        message: 'expected a log level (fatal, error, warn, info, debug, trace, silent), found "loud"',
      },
    ]);
    expect(problems({ LOG_LEVEL: 'verbose' })).toEqual([
      {
        source: 'environment variable LOG_LEVEL',
        path: '',
        message: 'expected a log level (fatal, error, warn, info, debug, trace, silent), found "verbose"',
      },
    ]);
  });

  it('levelFromRustLog reads the bare directive, else the first module level', () => {
    expect(levelFromRustLog('tasker=debug,sqlx=warn,info')).toBe('info');
    expect(levelFromRustLog('tasker=debug,sqlx=warn')).toBe('debug');
    expect(levelFromRustLog(' , ')).toBeUndefined();
    expect(levelFromRustLog('OFF')).toBe('silent');
  });
});

describe('precedence of the variables over everything', () => {
  it('all variables at once beat the environment file, which beats the base', () => {
    const loaded = load({
      DATABASE_URL: 'postgres://env@env-db/tasker',
      TASKER_MESSAGING_BACKEND: 'rabbitmq',
      RABBITMQ_URL: 'amqps://env@env-mq/%2F',
      TASKER_DEPLOYMENT_MODE: 'EventDrivenOnly',
      WORKER_NAMESPACES: 'payments',
      LOG_LEVEL: 'trace',
    });
    expect(loaded.config.database.url).toBe('postgres://env@env-db/tasker');
    expect(loaded.config.messaging.backend).toBe('rabbitmq');
    expect(loaded.config.rabbitmq.url).toBe('amqps://env@env-mq/%2F');
    expect(loaded.config.orchestration.deployment_mode).toBe('EventDrivenOnly');
    expect(loaded.config.worker.deployment_mode).toBe('EventDrivenOnly');
    expect(loaded.config.worker.namespaces).toEqual(['payments']);
    expect(loaded.config.telemetry.log_level).toBe('trace');
    // A key no variable touches still comes from the environment file, then the base.
    expect(loaded.config.rabbitmq.prefetch_count).toBe(100);
    expect(loaded.provenance.get('rabbitmq.prefetch_count')).toBe('base/rabbitmq.toml');
  });

  it('every variable problem is reported at once', () => {
    const reported = problems({
      DATABASE_URL: 'postgres://a@b/c',
      DATABASE_URL_FILE: '/dev/null',
      TASKER_MESSAGING_BACKEND: 'kafka',
      DEPLOYMENT_MODE: 'Sometimes',
      LOG_LEVEL: 'loud',
    });
    expect(reported.map((p: ConfigProblem) => p.source)).toEqual([
      'environment variable DATABASE_URL_FILE',
      'environment variable TASKER_MESSAGING_BACKEND',
      'environment variable DEPLOYMENT_MODE',
      'environment variable LOG_LEVEL',
    ]);
  });

  it('environmentOverrides reads only the env object it is given', () => {
    const found: ConfigProblem[] = [];
    expect(environmentOverrides({}, found)).toEqual([]);
    expect(found).toEqual([]);
    expect(environmentOverrides({ WORKER_NAMESPACES: 'a,b' }, found)).toEqual([
      { variable: 'WORKER_NAMESPACES', path: ['worker', 'namespaces'], value: ['a', 'b'] },
    ]);
  });
});
