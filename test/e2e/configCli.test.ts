import { execFile } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configRoot, REPO_ROOT, tempDir } from '../unit/config/configTestKit.ts';

const BIN = join(REPO_ROOT, 'bin', 'tasker.js');

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Variables the loader reads: never inherited from the developer's shell. */
const CONFIG_VARIABLES = [
  'DATABASE_URL',
  'DATABASE_URL_FILE',
  'RABBITMQ_URL',
  'DEPLOYMENT_MODE',
  'WORKER_NAMESPACES',
  'LOG_LEVEL',
  'RUST_LOG',
];

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || name.startsWith('TASKER_') || CONFIG_VARIABLES.includes(name)) continue;
    env[name] = value;
  }
  return env;
}

/** Runs the real `tasker` command in its own process from the repository root, with only `env` added. */
function tasker(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...cleanEnv(), ...env }, cwd: REPO_ROOT, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '');
const STACK_LINE = /^ {4}at /m;

const DB_PASSWORD = 'TopSecret123';
const MQ_PASSWORD = 'OtherSecret';
const SECRETS = {
  DATABASE_URL: `postgres://u:${DB_PASSWORD}@db/x`,
  RABBITMQ_URL: `amqp://a:${MQ_PASSWORD}@mq/`,
};

/** The production database, which production must be given (the default is a development database). */
const PRODUCTION_DB = { DATABASE_URL: 'postgres://svc@db.internal:5432/tasker_production' };

/**
 * Production requires a key source for its HTTP APIs (docs/security.md): a public key file gives one; and a
 * database URL of its own.
 */
function productionKey(): Record<string, string> {
  const file = join(tempDir(), 'public.pem');
  writeFileSync(file, '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n');
  return { TASKER_JWT_PUBLIC_KEY_PATH: file, ...PRODUCTION_DB };
}

const shippedFiles = (environment: string): number =>
  ['base', join('environments', environment)]
    .map((folder) =>
      readdirSync(join(REPO_ROOT, 'config', 'tasker', folder)).filter((f) => f.endsWith('.toml')),
    )
    .reduce((sum, files) => sum + files.length, 0);

describe('tasker config validate (real processes)', () => {
  it('TASKER_ENV=production: exit 0 and the lines of the seed', async () => {
    const result = await tasker(['config', 'validate'], { TASKER_ENV: 'production', ...productionKey() });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // The seed's expected output, except its "10 configurations": the seed's own circuit_breakers.toml has 2.
    expect(lines(result.stdout).slice(0, 5)).toEqual([
      '✓ Configuration loaded successfully',
      '✓ Environment: production',
      '✓ Deployment mode: Hybrid',
      '✓ Database pool: 50 connections',
      '✓ Circuit breakers: 2 configurations',
    ]);
    expect(lines(result.stdout).slice(5)).toEqual([
      '✓ Worker: Hybrid, namespaces (none set)',
      '✓ Messaging backend: pgmq',
      '✓ Auth (orchestration): on, bearer tokens (static key), 0 API key(s)',
      '✓ Auth (worker): on, bearer tokens (static key), 0 API key(s)',
      `✓ Files: ${shippedFiles('production')} read from ${join(REPO_ROOT, 'config', 'tasker')}`,
    ]);
  });

  it('TASKER_ENV=production without a key source: exit 1, naming the keys to set for each role', async () => {
    const result = await tasker(['config', 'validate'], { TASKER_ENV: 'production', ...PRODUCTION_DB });
    expect(result.code).toBe(1);
    expect(lines(result.stdout).slice(0, 1)).toEqual(['✗ Configuration has 2 problems:']);
    for (const role of ['orchestration', 'worker']) {
      expect(result.stdout).toContain(
        `✗ environments/production/auth.toml: ${role}.web.auth: auth is enabled but nothing can authenticate: set ${role}.web.auth.jwt_public_key_path`,
      );
    }
    const off = await tasker(['config', 'validate'], {
      TASKER_ENV: 'production',
      TASKER_AUTH_ENABLED: 'false',
      ...PRODUCTION_DB,
    });
    expect(off.code).toBe(0);
    expect(lines(off.stdout)).toContain(
      '! Auth (orchestration): off in production: the API is open to anyone who reaches it',
    );
  });

  it('TASKER_ENV=production without DATABASE_URL: exit 1, the default being a development database', async () => {
    const result = await tasker(['config', 'validate'], {
      TASKER_ENV: 'production',
      ...productionKey(),
      DATABASE_URL: '',
    });
    expect(result.code).toBe(1);
    expect(lines(result.stdout)).toEqual([
      '✗ Configuration has 1 problem:',
      '  ✗ base/database.toml: database.url: production would use the development database postgres://root@127.0.0.1:5432/tasker_development: set DATABASE_URL (or DATABASE_URL_FILE, a file holding it), or database.url in environments/production/',
    ]);
  });

  it('without TASKER_ENV it validates development', async () => {
    const result = await tasker(['config', 'validate']);
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toContain('✓ Environment: development');
    expect(lines(result.stdout)).toContain('✓ Database pool: 10 connections');
  });

  it('variables show in the summary', async () => {
    const result = await tasker(['config', 'validate'], {
      TASKER_ENV: 'production',
      DEPLOYMENT_MODE: 'PollingOnly',
      WORKER_NAMESPACES: 'payments, inventory',
      ...productionKey(),
    });
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toEqual(
      expect.arrayContaining([
        '✓ Deployment mode: PollingOnly',
        '✓ Worker: PollingOnly, namespaces payments, inventory',
        '✓ Messaging backend: pgmq',
      ]),
    );
  });

  it('refuses the RabbitMQ backend, which this version does not have, instead of running on PGMQ silently', async () => {
    const result = await tasker(['config', 'validate'], { TASKER_MESSAGING_BACKEND: 'rabbitmq' });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('✗ Configuration has 1 problem:');
    expect(result.stdout).toContain(
      'environment variable TASKER_MESSAGING_BACKEND: messaging.backend: the RabbitMQ backend is not available in this version of Tasker',
    );
    expect(result.stdout).not.toContain('✓ Messaging backend');
    const service = await tasker(['orchestration', '--bind', '127.0.0.1:0', '--grpc-bind', '127.0.0.1:0'], {
      TASKER_MESSAGING_BACKEND: 'rabbitmq',
    });
    expect(service.code).toBe(1);
    expect(service.stdout + service.stderr).toContain('the RabbitMQ backend is not available');
  });

  it('a broken TASKER_CONFIG_ROOT: exit 1, every problem printed, no stack trace', async () => {
    const root = configRoot({
      files: {
        'environments/broken/orchestration.toml':
          '[orchestration.polling]\nbatch_size = "fifty"\nbatch_sise = 3\n',
        'environments/broken/database.toml': '[database]\nmax_connections = 5\nmin_connections = 6\n',
        'environments/broken/syntax.toml': '[pgmq]\nheartbeat_interval_ms = = 1\n',
      },
    });
    const result = await tasker(['config', 'validate'], {
      TASKER_CONFIG_ROOT: root.dir,
      TASKER_ENV: 'broken',
      DEPLOYMENT_MODE: 'Sometimes',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('');
    const printed = lines(result.stdout);
    expect(printed[0]).toBe('✗ Configuration has 5 problems:');
    expect(printed.slice(1).sort()).toEqual(
      [
        '  ✗ environments/broken/syntax.toml:2:25: TOML syntax error: invalid value near "heartbeat_interval_ms = = 1"; a value is a "quoted string", a number, true or false, an [array] or an {inline = "table"}',
        '  ✗ environment variable DEPLOYMENT_MODE: expected one of "Hybrid", "EventDrivenOnly", "PollingOnly", found "Sometimes"',
        '  ✗ environments/broken/orchestration.toml: orchestration.polling.batch_size: expected an integer 1..10000, found "fifty"',
        '  ✗ environments/broken/orchestration.toml: orchestration.polling.batch_sise: unknown key "batch_sise"; did you mean "batch_size"? (known keys in [orchestration.polling]: task_request_poll_interval_ms, step_result_poll_interval_ms, finalization_poll_interval_ms, batch_size, max_messages_per_poll, error_backoff_base_ms, error_backoff_max_ms, error_backoff_multiplier)',
        '  ✗ environments/broken/database.toml: database.min_connections: database.min_connections is 6, greater than database.max_connections (5): the pool cannot keep more connections than it may open',
      ].sort(),
    );
    expect(result.stdout + result.stderr).not.toMatch(STACK_LINE);
    expect(printed.some((line) => line.startsWith('✓'))).toBe(false);
  });

  it('an unknown TASKER_ENV: exit 1, one line listing the known environments', async () => {
    const result = await tasker(['config', 'validate'], { TASKER_ENV: 'staging' });
    expect(result.code).toBe(1);
    expect(lines(result.stdout)).toEqual([
      '✗ Configuration has 1 problem:',
      `  ✗ environment variable TASKER_ENV: unknown environment "staging": no folder environments/staging/ under ${join(REPO_ROOT, 'config', 'tasker')} (known: development, production, test). Create the folder or fix TASKER_ENV.`,
    ]);
  });

  it('a bad configuration with a password in a valid URL does not print the password', async () => {
    const root = configRoot({
      files: {
        'environments/broken/database.toml': `[database]\nurl = "postgres://app:${DB_PASSWORD}@db/x"\nmax_connections = 0\n`,
      },
    });
    const result = await tasker(['config', 'validate'], {
      TASKER_CONFIG_ROOT: root.dir,
      TASKER_ENV: 'broken',
      RABBITMQ_URL: SECRETS.RABBITMQ_URL,
    });
    expect(result.code).toBe(1);
    expect(lines(result.stdout)).toEqual([
      '✗ Configuration has 1 problem:',
      '  ✗ environments/broken/database.toml: database.max_connections: expected an integer 1..10000, found 0',
    ]);
    expect(result.stdout + result.stderr).not.toContain(DB_PASSWORD);
    expect(result.stdout + result.stderr).not.toContain(MQ_PASSWORD);
  });

  // Known defect (reported): an invalid secret value is quoted in full ("found \"mysql://u:TopSecret123@db/x\"")
  // and `config validate` prints problems without redaction. Remove `.fails` once fixed.
  it('a bad configuration whose invalid value is a URL with a password does not print it', async () => {
    const result = await tasker(['config', 'validate'], { DATABASE_URL: `mysql://u:${DB_PASSWORD}@db/x` });
    expect(result.code).toBe(1);
    expect(result.stdout + result.stderr).not.toContain(DB_PASSWORD);
  });
});

describe('tasker config show (real processes)', () => {
  it('TOML: the merged configuration with both passwords redacted', async () => {
    const result = await tasker(['config', 'show'], { TASKER_ENV: 'production', ...SECRETS });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).not.toContain(DB_PASSWORD);
    expect(result.stdout).not.toContain(MQ_PASSWORD);
    expect(lines(result.stdout)[0]).toBe(
      '# Tasker configuration, environment "production"; secrets redacted',
    );
    expect(result.stdout).toContain('url = "postgres://u:***@db/x"');
    expect(result.stdout).toContain('url = "amqp://a:***@mq/"');
    expect(result.stdout).toContain('max_connections = 50');
  });

  it('--json: parses, and holds the redacted URLs', async () => {
    const result = await tasker(['config', 'show', '--json'], { TASKER_ENV: 'production', ...SECRETS });
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain(DB_PASSWORD);
    expect(result.stdout).not.toContain(MQ_PASSWORD);
    const shown = JSON.parse(result.stdout) as {
      database: { url: string; max_connections: number };
      rabbitmq: { url: string };
      circuit_breakers: Record<string, unknown>;
    };
    expect(shown.database.url).toBe('postgres://u:***@db/x');
    expect(shown.rabbitmq.url).toBe('amqp://a:***@mq/');
    expect(shown.database.max_connections).toBe(50);
    expect(Object.keys(shown.circuit_breakers)).toEqual(['database', 'message_queue']);
  });

  it('--sources: each key with the layer that set it, passwords redacted', async () => {
    const result = await tasker(['config', 'show', '--sources'], { TASKER_ENV: 'production', ...SECRETS });
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain(DB_PASSWORD);
    expect(result.stdout).not.toContain(MQ_PASSWORD);
    const shown = lines(result.stdout);
    expect(shown).toEqual(
      expect.arrayContaining([
        'database.url = "postgres://u:***@db/x"  # environment variable DATABASE_URL',
        'rabbitmq.url = "amqp://a:***@mq/"  # environment variable RABBITMQ_URL',
        'database.max_connections = 50  # environments/production/database.toml',
        'database.idle_timeout_seconds = 600  # environments/production/database.toml',
        'orchestration.shutdown_timeout_ms = 30000  # base/orchestration.toml',
        'orchestration.grpc.bind_address = "0.0.0.0:9190"  # base/orchestration.toml',
      ]),
    );
  });

  it('DATABASE_URL_FILE: the secret read from the file is redacted too', async () => {
    const file = join(tempDir(), 'database_url');
    writeFileSync(file, `postgres://svc:${DB_PASSWORD}@db.internal:5432/tasker_production\n`);
    const result = await tasker(['config', 'show', '--sources'], {
      TASKER_ENV: 'production',
      DATABASE_URL_FILE: file,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain(DB_PASSWORD);
    expect(lines(result.stdout)).toContain(
      'database.url = "postgres://svc:***@db.internal:5432/tasker_production"  # environment variable DATABASE_URL_FILE',
    );
  });

  it('a broken configuration: exit 1, the problems on stderr with the error code, passwords redacted, no stack', async () => {
    const root = configRoot({
      files: { 'environments/broken/orchestration.toml': '[orchestration.polling]\nbatch_size = "fifty"\n' },
    });
    const result = await tasker(['config', 'show'], {
      TASKER_CONFIG_ROOT: root.dir,
      TASKER_ENV: 'broken',
      DATABASE_URL: `mysql://u:${DB_PASSWORD}@db/x`,
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(lines(result.stderr)).toEqual([
      '✗ configuration has 2 problems:',
      '  environment variable DATABASE_URL: database.url: expected a postgres://… or pglite:<folder> URL, found "mysql://u:***@db/x"',
      '  environments/broken/orchestration.toml: orchestration.polling.batch_size: expected an integer 1..10000, found "fifty" [TASKER_CONFIG_INVALID]',
    ]);
    expect(result.stderr).not.toContain(DB_PASSWORD);
    expect(result.stderr).not.toMatch(STACK_LINE);
  });

  it('every URL form keeps its password out: query parameters, an unencoded @, config show, migrate errors', async () => {
    const forms = [
      `postgres://root@127.0.0.1:1/tasker?password=${DB_PASSWORD}`,
      `postgres://root:P@${DB_PASSWORD}@127.0.0.1:1/tasker`,
      `postgres://root@127.0.0.1:1/tasker?sslmode=disable&sslpassword=${DB_PASSWORD}`,
    ];
    for (const url of forms) {
      const shown = await tasker(['config', 'show', '--json'], { DATABASE_URL: url });
      expect(shown.code, url).toBe(0);
      expect(shown.stdout, url).not.toContain(DB_PASSWORD);
      const sources = await tasker(['config', 'show', '--sources'], { DATABASE_URL: url });
      expect(sources.stdout, url).not.toContain(DB_PASSWORD);
      // Port 1 refuses: the error names the database without its password.
      const migrated = await tasker(['migrate'], { DATABASE_URL: url });
      expect(migrated.code, url).not.toBe(0);
      expect(migrated.stdout + migrated.stderr, url).toContain('127.0.0.1:1');
      expect(migrated.stdout + migrated.stderr, url).not.toContain(DB_PASSWORD);
    }
  });

  // Known defect (reported): --sources falls back to the file that set the parent table, so a key that only
  // the schema defaults provide is attributed to a file. Remove `.fails` once fixed.
  it('--sources says "defaults" for a key no file or variable set', async () => {
    const file = join(tempDir(), 'one.toml');
    writeFileSync(file, '[database]\nmax_connections = 7\n');
    const result = await tasker(['config', 'show', '--sources'], { TASKER_CONFIG_PATH: file });
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toContain(`database.max_connections = 7  # ${file}`);
    expect(lines(result.stdout)).toContain('database.min_connections = 0  # defaults');
  });
});
