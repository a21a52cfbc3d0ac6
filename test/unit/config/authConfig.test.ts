import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveAuthSettings } from '../../../src/config/authSettings.ts';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import { redactConfig } from '../../../src/config/redactConfig.ts';
import { configProblems, configRoot, REPO_ROOT, tempDir } from './configTestKit.ts';

const KEY = 'k3y-0f-the-0perat0rs-2f9c1a7e';
const shipped = (env: Record<string, string>) =>
  loadConfig({ env: { TASKER_CONFIG_ROOT: join(REPO_ROOT, 'config'), ...env }, cwd: REPO_ROOT });

describe('[<role>.web.auth] defaults', () => {
  it.each(['development', 'test'])('are off in %s', (environment) => {
    const { config } = shipped({ TASKER_ENV: environment });
    expect(config.orchestration.web.auth.enabled).toBe(false);
    expect(config.worker.web.auth.enabled).toBe(false);
    expect(config.orchestration.web.auth.jwt_allowed_algorithms).toEqual(['RS256']);
    expect(config.orchestration.web.auth.permissions_claim).toBe('permissions');
    expect(config.orchestration.web.auth.strict_validation).toBe(true);
  });

  it('are on in production, and a service there without a key source is refused, naming the keys to set', () => {
    const loaded = shipped({ TASKER_ENV: 'production' });
    expect(loaded.config.orchestration.web.auth.enabled).toBe(true);
    expect(loaded.config.worker.web.auth.enabled).toBe(true);
    for (const role of ['orchestration', 'worker'] as const) {
      const [problem, ...rest] = configProblems(() => resolveAuthSettings(loaded, role, { env: {} }));
      expect(rest).toEqual([]);
      expect(problem?.path).toBe(`${role}.web.auth`);
      expect(problem?.source).toBe('environments/production/auth.toml');
      expect(problem?.message).toContain(`${role}.web.auth.jwt_public_key_path`);
      expect(problem?.message).toContain('TASKER_JWKS_URL');
    }
  });

  it('production takes its key source from TASKER_JWT_PUBLIC_KEY_PATH; TASKER_AUTH_ENABLED=false turns auth off', () => {
    const dir = tempDir();
    const pem = join(dir, 'public.pem');
    writeFileSync(pem, '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n');
    const loaded = shipped({ TASKER_ENV: 'production', TASKER_JWT_PUBLIC_KEY_PATH: pem });
    expect(resolveAuthSettings(loaded, 'orchestration', { env: {} }).publicKeyPem).toContain('MIIB');
    const off = shipped({ TASKER_ENV: 'production', TASKER_AUTH_ENABLED: 'false' });
    expect(off.config.orchestration.web.auth.enabled).toBe(false);
    expect(off.provenance.get('orchestration.web.auth.enabled')).toBe(
      'environment variable TASKER_AUTH_ENABLED',
    );
    expect(configProblems(() => shipped({ TASKER_AUTH_ENABLED: 'maybe' }))[0]?.message).toBe(
      'expected "true" or "false", found "maybe"',
    );
  });
});

describe('[<role>.web.auth] validation', () => {
  const authFile = (text: string) => configRoot({ files: { 'environments/test/auth.toml': text } });

  it('refuses unknown permissions under strict_validation, naming the key path; accepts them without', () => {
    const root = authFile(`
[[orchestration.web.auth.api_keys]]
key = "${KEY}"
permissions = ["tasks:read", "tasks:delete"]
`);
    const [problem, ...rest] = root.problems({ TASKER_ENV: 'test' });
    expect(rest).toEqual([]);
    expect(problem?.path).toBe('orchestration.web.auth.api_keys[0].permissions[1]');
    expect(problem?.message).toMatch(/unknown permission "tasks:delete".*strict_validation/);

    const lenient = authFile(`
[orchestration.web.auth]
strict_validation = false
[[orchestration.web.auth.api_keys]]
key = "${KEY}"
permissions = ["tasks:read", "tasks:delete"]
`);
    expect(
      lenient.load({ TASKER_ENV: 'test' }).config.orchestration.web.auth.api_keys[0]?.permissions,
    ).toEqual(['tasks:read', 'tasks:delete']);
  });

  it('refuses the global wildcard even without strict_validation', () => {
    const root = authFile(`
[worker.web.auth]
strict_validation = false
[[worker.web.auth.api_keys]]
key = "${KEY}"
permissions = ["*"]
`);
    const [problem] = root.problems({ TASKER_ENV: 'test' });
    expect(problem?.path).toBe('worker.web.auth.api_keys[0].permissions[0]');
    expect(problem?.message).toMatch(/global wildcard "\*" is refused/);
  });

  it.each(['none', 'HS256', 'HS512'])('refuses the algorithm %s', (alg) => {
    const root = authFile(`[orchestration.web.auth]\njwt_allowed_algorithms = ["RS256", "${alg}"]\n`);
    const [problem] = root.problems({ TASKER_ENV: 'test' });
    expect(problem?.path).toBe('orchestration.web.auth.jwt_allowed_algorithms[1]');
    expect(problem?.message).toMatch(/"none" and HS\* are refused/);
  });

  it('refuses two token key sources, and an API key given two ways or none', () => {
    const root = authFile(`
[orchestration.web.auth]
jwks_url = "https://idp.example/jwks.json"
jwt_public_key_path = "/etc/tasker/public.pem"
[[orchestration.web.auth.api_keys]]
key = "${KEY}"
key_env = "OPS_KEY"
permissions = []
[[orchestration.web.auth.api_keys]]
permissions = []
`);
    const problems = root.problems({ TASKER_ENV: 'test' });
    expect(problems.map((p) => p.path).sort()).toEqual([
      'orchestration.web.auth.api_keys[0]',
      'orchestration.web.auth.api_keys[1]',
      'orchestration.web.auth.jwt_public_key_path',
    ]);
    expect(problems.map((p) => p.message).join('\n')).not.toContain(KEY);
  });

  it('reads keys from variables and secret files; an unset variable or missing file is an error naming the key', () => {
    const dir = tempDir();
    const secret = join(dir, 'ops.key');
    writeFileSync(secret, `${KEY}-file\n`);
    const root = authFile(`
[orchestration.web.auth]
enabled = true
[[orchestration.web.auth.api_keys]]
key_env = "OPS_KEY"
permissions = ["tasks:*"]
description = "operators"
[[orchestration.web.auth.api_keys]]
key_file = "${secret}"
permissions = ["dlq:read"]
`);
    const loaded = root.load({ TASKER_ENV: 'test' });
    const settings = resolveAuthSettings(loaded, 'orchestration', { env: { OPS_KEY: `${KEY}-env` } });
    expect(settings.apiKeys.map((k) => [k.key, k.path])).toEqual([
      [`${KEY}-env`, 'orchestration.web.auth.api_keys[0]'],
      [`${KEY}-file`, 'orchestration.web.auth.api_keys[1]'],
    ]);
    const problems = configProblems(() => resolveAuthSettings(loaded, 'orchestration', { env: {} }));
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['orchestration.web.auth.api_keys[0].key_env', 'environment variable OPS_KEY is not set (or is empty)'],
    ]);
  });

  it('redacts API keys wherever the configuration is shown', () => {
    const root = authFile(`
[[orchestration.web.auth.api_keys]]
key = "${KEY}"
permissions = ["tasks:read"]
description = "ci"
`);
    const redacted = redactConfig(root.load({ TASKER_ENV: 'test' }).config);
    expect(JSON.stringify(redacted)).not.toContain(KEY);
    expect(redacted.orchestration.web.auth.api_keys[0]).toMatchObject({ key: '***', description: 'ci' });
    const short = authFile(`
[[orchestration.web.auth.api_keys]]
key = "short-${KEY.slice(0, 4)}"
`);
    expect(short.formatted({ TASKER_ENV: 'test' }).join('\n')).not.toContain(`short-${KEY.slice(0, 4)}`);
  });
});
