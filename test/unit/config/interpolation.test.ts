import { describe, expect, it } from 'vitest';
import type { Env } from '../../../src/config/environmentOverrides.ts';
import { interpolate } from '../../../src/config/interpolate.ts';
import type { ConfigProblem } from '../../../src/domain/errors.ts';
import { configRoot } from './configTestKit.ts';

const FILE = 'environments/staging/interpolated.toml';

/** Loads the shipped base plus one environment file holding `toml`. */
function loadWith(toml: string, env: Env = {}) {
  return configRoot({ files: { [FILE]: toml } }).load({ TASKER_ENV: 'staging', ...env });
}

function problemsWith(toml: string, env: Env = {}): readonly ConfigProblem[] {
  return configRoot({ files: { [FILE]: toml } }).problems({ TASKER_ENV: 'staging', ...env });
}

const notSet = (name: string, path: string): ConfigProblem => ({
  source: FILE,
  path,
  message: `environment variable ${name} is not set (or is empty) and has no default: set it, or write \${${name}:-default}`,
});

describe('${VAR} references in string values', () => {
  const toml = '[telemetry]\nservice_name = "${SERVICE_NAME}"\n';

  it('is replaced by the value of a set variable', () => {
    expect(loadWith(toml, { SERVICE_NAME: 'billing' }).config.telemetry.service_name).toBe('billing');
  });

  it('unset and without default: one problem naming the variable, the key path and the file', () => {
    expect(problemsWith(toml)).toEqual([notSet('SERVICE_NAME', 'telemetry.service_name')]);
  });

  it('set but empty counts as unset (same problem)', () => {
    expect(problemsWith(toml, { SERVICE_NAME: '' })).toEqual([
      notSet('SERVICE_NAME', 'telemetry.service_name'),
    ]);
  });

  it('is case-sensitive in the variable name', () => {
    expect(problemsWith(toml, { service_name: 'billing' })).toEqual([
      notSet('SERVICE_NAME', 'telemetry.service_name'),
    ]);
  });

  it('a string without ${ is left exactly as written, $ signs included', () => {
    const loaded = loadWith('[telemetry]\nservice_name = "$HOME-{x}-$"\n', { HOME: '/root' });
    expect(loaded.config.telemetry.service_name).toBe('$HOME-{x}-$');
  });

  it('only string values are interpolated: comments and keys are not', () => {
    const loaded = loadWith('# ${NOT_A_REFERENCE}\n[telemetry]\nservice_name = "plain" # ${ALSO_NOT}\n');
    expect(loaded.config.telemetry.service_name).toBe('plain');
  });
});

describe('${VAR:-default}', () => {
  const toml = '[telemetry]\nservice_name = "${SERVICE_NAME:-tasker-default}"\n';

  it('uses the default when the variable is unset', () => {
    expect(loadWith(toml).config.telemetry.service_name).toBe('tasker-default');
  });

  it('uses the default when the variable is empty', () => {
    expect(loadWith(toml, { SERVICE_NAME: '' }).config.telemetry.service_name).toBe('tasker-default');
  });

  it('uses the variable when it is set', () => {
    expect(loadWith(toml, { SERVICE_NAME: 'orders' }).config.telemetry.service_name).toBe('orders');
  });

  it('a default may contain colons, slashes and @ (URLs, host:port)', () => {
    const loaded = loadWith(
      '[database]\nurl = "${DB_URL:-postgres://app@db.internal:5432/tasker}"\n' +
        '[orchestration.web]\nbind_address = "${WEB_ADDR:-127.0.0.1:8088}"\n',
    );
    expect(loaded.config.database.url).toBe('postgres://app@db.internal:5432/tasker');
    expect(loaded.config.orchestration.web.bind_address).toBe('127.0.0.1:8088');
  });
});

describe('several references in one string', () => {
  const toml =
    '[database]\nurl = "postgres://${DB_USER}:${DB_PASSWORD}@${DB_HOST:-localhost}:${DB_PORT:-5432}/tasker_${DB_NAME:-dev}"\n';

  it('replaces each of them', () => {
    const loaded = loadWith(toml, {
      DB_USER: 'app',
      DB_PASSWORD: 's3cret',
      DB_HOST: 'db.internal',
      DB_NAME: 'prod',
    });
    expect(loaded.config.database.url).toBe('postgres://app:s3cret@db.internal:5432/tasker_prod');
    expect(loaded.provenance.get('database.url')).toBe(FILE);
  });

  it('reports every missing one, each naming the same key', () => {
    expect(problemsWith(toml, { DB_HOST: 'db' })).toEqual([
      notSet('DB_USER', 'database.url'),
      notSet('DB_PASSWORD', 'database.url'),
    ]);
  });

  it('a string mixing text and a numeric variable stays a string', () => {
    const loaded = loadWith('[telemetry]\nservice_name = "tasker-${SHARD}"\n', { SHARD: '7' });
    expect(loaded.config.telemetry.service_name).toBe('tasker-7');
  });
});

describe('a value that is one whole reference takes the type of what it resolves to', () => {
  it('max_connections = "${POOL:-50}" is the integer 50, or the integer in POOL', () => {
    const toml = '[database]\nmax_connections = "${POOL:-50}"\n';
    const byDefault = loadWith(toml).config.database.max_connections;
    expect(byDefault).toBe(50);
    expect(typeof byDefault).toBe('number');
    expect(loadWith(toml, { POOL: '75' }).config.database.max_connections).toBe(75);
  });

  it('booleans and decimals too', () => {
    const loaded = loadWith(
      '[database.query_cache]\nenabled = "${QUERY_CACHE:-true}"\n[telemetry.tracing]\nsample_ratio = "${RATIO:-0.25}"\n',
    );
    expect(loaded.config.database.query_cache.enabled).toBe(true);
    expect(loaded.config.telemetry.tracing.sample_ratio).toBe(0.25);
    expect(
      loadWith('[database.query_cache]\nenabled = "${QC}"\n', { QC: 'false' }).config.database.query_cache
        .enabled,
    ).toBe(false);
  });

  it('a variable that is not a number, for an integer key, is reported against the file with what it held', () => {
    expect(problemsWith('[database]\nmax_connections = "${POOL:-50}"\n', { POOL: 'lots' })).toEqual([
      {
        source: FILE,
        path: 'database.max_connections',
        message: 'expected an integer 1..10000, found "lots"',
      },
    ]);
  });

  it('an out-of-range number from a variable is reported like one written in the file', () => {
    expect(problemsWith('[database]\nmax_connections = "${POOL}"\n', { POOL: '0' })).toEqual([
      { source: FILE, path: 'database.max_connections', message: 'expected an integer 1..10000, found 0' },
    ]);
  });

  // Known defect (reported): the conversion ignores the schema, so a string key whose variable holds digits
  // becomes a number and fails validation ("expected a non-empty string, found 2024"). Remove `.fails` once fixed.
  it('a string key keeps a numeric-looking variable as a string', () => {
    const loaded = loadWith('[telemetry]\nservice_name = "${SERVICE_NAME}"\n', { SERVICE_NAME: '2024' });
    expect(loaded.config.telemetry.service_name).toBe('2024');
  });
});

describe('no injection: a variable value is data, never TOML', () => {
  it('a value that looks like TOML stays one plain string', () => {
    const injected = '"; x = 1';
    const loaded = loadWith('[telemetry]\nservice_name = "${SERVICE_NAME}"\n', { SERVICE_NAME: injected });
    expect(loaded.config.telemetry.service_name).toBe(injected);
    expect(Object.keys(loaded.config.telemetry)).not.toContain('x');
  });

  it('a value with a newline and a table header changes no other key', () => {
    const injected = 'svc"\n[database]\nmax_connections = 1\n';
    const loaded = loadWith('[telemetry]\nservice_name = "${SERVICE_NAME}"\n', { SERVICE_NAME: injected });
    expect(loaded.config.telemetry.service_name).toBe(injected);
    expect(loaded.config.database.max_connections).toBe(10);
  });

  it('a value holding ${OTHER} is not expanded a second time', () => {
    const loaded = loadWith('[telemetry]\nservice_name = "${SERVICE_NAME}"\n', {
      SERVICE_NAME: '${SECRET}',
      SECRET: 'leaked',
    });
    expect(loaded.config.telemetry.service_name).toBe('${SECRET}');
  });
});

describe('missing variables in arrays, base files, and only once', () => {
  it('an array element names its index', () => {
    expect(
      problemsWith('[orchestration.event_driven]\nchannels = ["pgmq_queue_created", "${CHANNEL}"]\n'),
    ).toEqual([notSet('CHANNEL', 'orchestration.event_driven.channels[1]')]);
  });

  it('a missing variable in a base file names that base file', () => {
    const root = configRoot({
      files: {
        'base/zz_web.toml': '[worker.web]\nbind_address = "${WORKER_ADDR}"\n',
        'environments/staging/.keep': '',
      },
    });
    expect(root.problems({ TASKER_ENV: 'staging' })).toEqual([
      {
        source: 'base/zz_web.toml',
        path: 'worker.web.bind_address',
        message:
          'environment variable WORKER_ADDR is not set (or is empty) and has no default: set it, or write ${WORKER_ADDR:-default}',
      },
    ]);
  });

  it("the empty stand-in of a missing variable is not reported again as the key's type error", () => {
    const problems = problemsWith('[database]\nmax_connections = "${POOL}"\nmin_connections = 2\n');
    expect(problems).toEqual([notSet('POOL', 'database.max_connections')]);
  });

  it('the shipped base bind addresses use the default unless their variable is set', () => {
    expect(loadWith('').config.orchestration.web.bind_address).toBe('0.0.0.0:8080');
    expect(
      loadWith('', { TASKER_WEB_BIND_ADDRESS: '10.0.0.5:9000' }).config.orchestration.web.bind_address,
    ).toBe('10.0.0.5:9000');
  });
});

describe('interpolate() on a parsed tree', () => {
  it('walks tables and arrays, leaves numbers, booleans and dates untouched', () => {
    const date = new Date('2026-01-15T00:00:00Z');
    const problems: ConfigProblem[] = [];
    const wholeReferences = new Set<string>();
    const result = interpolate({ a: { b: ['${X}', 3, true], c: date, d: '${Y:-4}', e: 'x${X}' } }, '', {
      env: { X: 'x' },
      source: 'f.toml',
      problems,
      wholeReferences,
    });
    // Typing a whole reference is the loader's job (it knows each key's type): here it stays a string.
    expect(result).toEqual({ a: { b: ['x', 3, true], c: date, d: '4', e: 'xx' } });
    expect([...wholeReferences].sort()).toEqual(['a.b[0]', 'a.d']);
    expect(problems).toEqual([]);
  });
});
