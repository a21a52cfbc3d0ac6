import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUNDLED_CONFIG_ROOT } from '../../../src/config/configFiles.ts';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { configProblems, configRoot, tempDir } from './configTestKit.ts';

describe('base and environment layers', () => {
  it('deep-merges: an overridden key replaces, its sibling set only in the base survives', () => {
    const root = configRoot({
      files: { 'environments/staging/database.toml': '[database]\nmax_connections = 42\n' },
    });
    const loaded = root.load({ TASKER_ENV: 'staging' });
    expect(loaded.config.database.max_connections).toBe(42);
    expect(loaded.config.database.idle_timeout_seconds).toBe(300);
    expect(loaded.config.database.url).toBe('postgres://root@127.0.0.1:5432/tasker_development');
    expect(loaded.provenance.get('database.max_connections')).toBe('environments/staging/database.toml');
    expect(loaded.provenance.get('database.idle_timeout_seconds')).toBe('base/database.toml');
  });

  it('deep-merges nested tables: one key of [orchestration.hybrid] leaves the rest of the tree alone', () => {
    const root = configRoot({
      files: { 'environments/staging/o.toml': '[orchestration.hybrid]\npolling_interval_ms = 250\n' },
    });
    const { config } = root.load({ TASKER_ENV: 'staging' });
    expect(config.orchestration.hybrid.polling_interval_ms).toBe(250);
    expect(config.orchestration.hybrid.listener_reconnect_interval_ms).toBe(5000);
    expect(config.orchestration.hybrid.fallback_activation_threshold_ms).toBe(5000);
    expect(config.orchestration.deployment_mode).toBe('Hybrid');
    expect(config.orchestration.polling.batch_size).toBe(10);
  });

  it('replaces arrays as a whole (no concatenation with the base channels)', () => {
    const root = configRoot({
      files: {
        'environments/staging/o.toml': '[orchestration.event_driven]\nchannels = ["pgmq_queue_created"]\n',
      },
    });
    const { config } = root.load({ TASKER_ENV: 'staging' });
    expect(config.orchestration.event_driven.channels).toEqual(['pgmq_queue_created']);
  });

  it('reads the files of a folder in name order: a later file wins a key both set', () => {
    const root = configRoot({
      files: {
        'environments/staging/b.toml': '[telemetry]\nservice_name = "from-b"\n',
        'environments/staging/a.toml': '[telemetry]\nservice_name = "from-a"\nlog_format = "pretty"\n',
      },
    });
    const loaded = root.load({ TASKER_ENV: 'staging' });
    expect(loaded.config.telemetry.service_name).toBe('from-b');
    expect(loaded.config.telemetry.log_format).toBe('pretty');
    expect(loaded.provenance.get('telemetry.service_name')).toBe('environments/staging/b.toml');
    expect(loaded.files.slice(-2)).toEqual(['environments/staging/a.toml', 'environments/staging/b.toml']);
  });

  it('ignores files that are not .toml', () => {
    const root = configRoot({
      files: {
        'environments/staging/database.toml.bak': '[database]\nmax_connections = 1\n',
        'environments/staging/notes.txt': 'max_connections = 2',
      },
    });
    const loaded = root.load({ TASKER_ENV: 'staging' });
    expect(loaded.config.database.max_connections).toBe(10);
    expect(loaded.files.filter((f) => f.startsWith('environments/'))).toEqual([]);
  });

  it('an environment folder with no files is valid and changes nothing', () => {
    const root = configRoot({ files: { 'environments/empty/.keep': '' } });
    const loaded = root.load({ TASKER_ENV: 'empty' });
    expect(loaded.environment).toBe('empty');
    expect(loaded.files).toHaveLength(9);
    expect(loaded.files.every((file) => file.startsWith('base/'))).toBe(true);
    expect(loaded.config.database.max_connections).toBe(10);
  });
});

describe('TASKER_ENV', () => {
  const root = (): ReturnType<typeof configRoot> =>
    configRoot({
      files: {
        'environments/development/database.toml': '[database]\nmax_connections = 11\n',
        'environments/production/database.toml': '[database]\nmax_connections = 55\n',
      },
    });

  it('defaults to development when unset', () => {
    const loaded = root().load({});
    expect(loaded.environment).toBe('development');
    expect(loaded.config.database.max_connections).toBe(11);
    expect(loaded.files).toContain('environments/development/database.toml');
    expect(loaded.files).not.toContain('environments/production/database.toml');
  });

  it('defaults to development when empty or blank, and is trimmed', () => {
    expect(root().load({ TASKER_ENV: '' }).environment).toBe('development');
    expect(root().load({ TASKER_ENV: '   ' }).environment).toBe('development');
    const trimmed = root().load({ TASKER_ENV: ' production\n' });
    expect(trimmed.environment).toBe('production');
    expect(trimmed.config.database.max_connections).toBe(55);
  });

  it('selects exactly one environment folder', () => {
    const loaded = root().load({ TASKER_ENV: 'production' });
    expect(loaded.config.database.max_connections).toBe(55);
    expect(loaded.provenance.get('database.max_connections')).toBe('environments/production/database.toml');
    expect(loaded.files).not.toContain('environments/development/database.toml');
  });
});

describe('where the configuration is found', () => {
  it('TASKER_CONFIG_ROOT names the folder holding tasker/; sources are relative to tasker/', () => {
    const root = configRoot({
      files: { 'environments/development/x.toml': '[pgmq]\nreconnect_max_ms = 1234\n' },
    });
    const loaded = root.load({});
    expect(loaded.folder).toBe(root.folder);
    expect(loaded.config.pgmq.reconnect_max_ms).toBe(1234);
    expect(loaded.files).toContain('environments/development/x.toml');
    expect(loaded.files).toContain('base/pgmq.toml');
  });

  it('a relative TASKER_CONFIG_ROOT is resolved against cwd', () => {
    const root = configRoot({
      files: { 'environments/development/x.toml': '[pgmq]\nreconnect_max_ms = 4321\n' },
    });
    const loaded = loadConfig({ env: { TASKER_CONFIG_ROOT: '.' }, cwd: root.dir });
    expect(loaded.folder).toBe(root.folder);
    expect(loaded.config.pgmq.reconnect_max_ms).toBe(4321);
  });

  it('without TASKER_CONFIG_ROOT, ./config/tasker of cwd is used when it exists', () => {
    const root = configRoot({
      underConfig: true,
      files: { 'environments/development/x.toml': '[pgmq]\nreconnect_max_ms = 777\n' },
    });
    const cwd = join(root.dir, '..');
    const loaded = loadConfig({ env: {}, cwd });
    expect(loaded.folder).toBe(join(cwd, 'config', 'tasker'));
    expect(loaded.config.pgmq.reconnect_max_ms).toBe(777);
  });

  it('without TASKER_CONFIG_ROOT and without ./config/tasker, the configuration bundled with Tasker is used', () => {
    const loaded = loadConfig({ env: { TASKER_ENV: 'test' }, cwd: tempDir() });
    expect(loaded.folder).toBe(join(BUNDLED_CONFIG_ROOT, 'tasker'));
    expect(loaded.config.database.url).toBe('postgres://root@127.0.0.1:5432/tasker_test');
    expect(loaded.config.pgmq.heartbeat_interval_ms).toBe(2000);
  });

  it('a TASKER_CONFIG_ROOT without tasker/base is one clear problem', () => {
    const empty = tempDir();
    const problems = configProblems(() => loadConfig({ env: { TASKER_CONFIG_ROOT: empty }, cwd: empty }));
    expect(problems).toEqual([
      {
        source: join(empty, 'tasker'),
        path: '',
        message: 'no base/ folder here: set TASKER_CONFIG_ROOT to the folder that holds tasker/base/*.toml',
      },
    ]);
  });
});

describe('TASKER_CONFIG_PATH', () => {
  it('loads exactly that one file: base and environment ignored, schema defaults fill the rest', () => {
    const root = configRoot({
      files: {
        'base/zz_extra.toml': '[database]\nmin_connections = 3\n',
        'environments/production/database.toml': '[database]\nmax_connections = 55\n',
      },
    });
    const single = join(root.dir, 'one.toml');
    writeFileSync(single, '[database]\nmax_connections = 7\n\n[telemetry]\nlog_format = "pretty"\n');
    const loaded = root.load({ TASKER_ENV: 'production', TASKER_CONFIG_PATH: single });
    expect(loaded.folder).toBeUndefined();
    expect(loaded.files).toEqual([single]);
    expect(loaded.environment).toBe('production');
    expect(loaded.config.database.max_connections).toBe(7); // the file, not production's 55
    expect(loaded.config.database.min_connections).toBe(0); // the schema default, not the base's 3
    expect(loaded.config.telemetry.log_format).toBe('pretty');
    // Everything it does not set is exactly the schema default.
    const defaults = configSchema.parse({});
    expect({ ...loaded.config, database: defaults.database, telemetry: defaults.telemetry }).toEqual(
      defaults,
    );
    expect(loaded.provenance.get('database.max_connections')).toBe(single);
    expect(loaded.provenance.has('database.min_connections')).toBe(false);
  });

  it('is resolved against cwd and reported as given', () => {
    const root = configRoot();
    writeFileSync(join(root.dir, 'one.toml'), '[pgmq]\nvisibility_timeout_seconds = 90\n');
    const loaded = loadConfig({ env: { TASKER_CONFIG_PATH: 'one.toml' }, cwd: root.dir });
    expect(loaded.files).toEqual(['one.toml']);
    expect(loaded.config.pgmq.visibility_timeout_seconds).toBe(90);
  });

  it('does not need the TASKER_ENV folder to exist', () => {
    const root = configRoot();
    const single = join(root.dir, 'one.toml');
    writeFileSync(single, '');
    expect(root.load({ TASKER_ENV: 'nowhere', TASKER_CONFIG_PATH: single }).config).toEqual(
      configSchema.parse({}),
    );
  });

  it('still applies environment variables over the file', () => {
    const root = configRoot();
    const single = join(root.dir, 'one.toml');
    writeFileSync(single, '[telemetry]\nlog_level = "warn"\n');
    const loaded = root.load({ TASKER_CONFIG_PATH: single, LOG_LEVEL: 'trace' });
    expect(loaded.config.telemetry.log_level).toBe('trace');
    expect(loaded.provenance.get('telemetry.log_level')).toBe('environment variable LOG_LEVEL');
  });
});

describe('provenance', () => {
  it('names the base file, the environment file or the variable that set each key last', () => {
    const root = configRoot({
      files: { 'environments/staging/database.toml': '[database]\nmax_connections = 20\n' },
    });
    const loaded = root.load({
      TASKER_ENV: 'staging',
      DATABASE_URL: 'postgres://app@db/x',
      WORKER_NAMESPACES: 'a',
    });
    expect(loaded.provenance.get('database.idle_timeout_seconds')).toBe('base/database.toml');
    expect(loaded.provenance.get('database.max_connections')).toBe('environments/staging/database.toml');
    expect(loaded.provenance.get('database.url')).toBe('environment variable DATABASE_URL');
    expect(loaded.provenance.get('worker.namespaces')).toBe('environment variable WORKER_NAMESPACES');
    expect(loaded.provenance.get('database.query_cache.ttl_seconds')).toBe('base/query_cache.toml');
    expect(loaded.provenance.get('telemetry.log_level')).toBe('base/telemetry.toml');
  });

  it('has no entry for a key no file or variable set (it comes from the schema defaults)', () => {
    const root = configRoot({
      shippedBase: false,
      files: {
        'base/db.toml': '[database]\nmax_connections = 9\n',
        'environments/development/.keep': '',
      },
    });
    const loaded = root.load({});
    expect(loaded.config.database.min_connections).toBe(0);
    expect(loaded.provenance.get('database.max_connections')).toBe('base/db.toml');
    expect(loaded.provenance.has('database.min_connections')).toBe(false);
    expect(loaded.provenance.has('orchestration')).toBe(false);
  });
});

describe('precedence: variables > environment files > base files > schema defaults', () => {
  const root = (): ReturnType<typeof configRoot> =>
    configRoot({
      shippedBase: false,
      files: {
        'base/telemetry.toml': '[telemetry]\nlog_level = "warn"\n',
        'base/orchestration.toml': '[orchestration]\ndeployment_mode = "EventDrivenOnly"\n',
        'environments/staging/telemetry.toml': '[telemetry]\nlog_level = "error"\n',
        'environments/staging/orchestration.toml': '[orchestration]\ndeployment_mode = "PollingOnly"\n',
        'environments/bare/.keep': '',
      },
    });

  it('each layer beats the one below it, key by key', () => {
    const r = root();
    const defaults = configSchema.parse({});
    expect(defaults.telemetry.log_level).toBe('info');
    expect(defaults.orchestration.deployment_mode).toBe('Hybrid');

    const baseOnly = r.load({ TASKER_ENV: 'bare' }).config;
    expect([baseOnly.telemetry.log_level, baseOnly.orchestration.deployment_mode]).toEqual([
      'warn',
      'EventDrivenOnly',
    ]);

    const withEnvironment = r.load({ TASKER_ENV: 'staging' }).config;
    expect([withEnvironment.telemetry.log_level, withEnvironment.orchestration.deployment_mode]).toEqual([
      'error',
      'PollingOnly',
    ]);

    const withVariables = r.load({
      TASKER_ENV: 'staging',
      LOG_LEVEL: 'debug',
      TASKER_DEPLOYMENT_MODE: 'Hybrid',
    });
    expect([
      withVariables.config.telemetry.log_level,
      withVariables.config.orchestration.deployment_mode,
    ]).toEqual(['debug', 'Hybrid']);
    expect(withVariables.provenance.get('telemetry.log_level')).toBe('environment variable LOG_LEVEL');
  });

  it('the same key in the base and the environment: the environment wins even when it sets the default', () => {
    const r = root();
    r.write('environments/staging/telemetry.toml', '[telemetry]\nlog_level = "info"\n');
    expect(r.load({ TASKER_ENV: 'staging' }).config.telemetry.log_level).toBe('info');
  });
});
