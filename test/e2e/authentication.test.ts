/**
 * Authentication and permissions through real `tasker orchestration` and `tasker worker` processes: every
 * route against every kind of credential an honest client or an attacker sends (the permission matrix),
 * JWKS key rotation against a JWKS server run by the test, and no credential in any output of the run.
 *
 * Orchestration verifies tokens with a static public key (a file) and knows two API keys (one from an
 * environment variable, one from a secret file); the worker verifies tokens against the test's JWKS server
 * and knows two API keys written in its configuration file.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERMISSIONS } from '../../src/domain/auth/permissions.ts';
import type { Permission } from '../../src/domain/auth/permissions.ts';
import {
  hmacWithPublicKey,
  publicJwk,
  signToken,
  startJwksServer,
  testKey,
  unsignedToken,
} from '../helpers/auth/tokens.ts';
import type { JwksServer, TestKey, TokenOptions } from '../helpers/auth/tokens.ts';
import { startOrchestrationProcess, startWorkerProcess, stopProcess } from '../helpers/e2e/taskerProcess.ts';
import type { TaskerProcess } from '../helpers/e2e/taskerProcess.ts';
import { createTestDatabase } from '../helpers/testDatabase.ts';
import type { TestDatabase } from '../helpers/testDatabase.ts';

const BIN = fileURLToPath(new URL('../../bin/tasker.js', import.meta.url));
const SHIPPED_CONFIG = fileURLToPath(new URL('../../config/tasker/', import.meta.url));

const ISSUER = 'https://issuer.tasker.test';
const AUDIENCE = 'tasker-api';
const secret = (label: string) => `${label}-${randomBytes(18).toString('hex')}`;
const DB_PASSWORD = secret('dbpw');
const ORCH_FULL_KEY = secret('orch-full');
const ORCH_LIMITED_KEY = secret('orch-limited');
const WORKER_FULL_KEY = secret('worker-full');
const WORKER_LIMITED_KEY = secret('worker-limited');

interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
  permission: Permission;
}

const TASK = randomUUID();
const STEP = randomUUID();
const ENTRY = randomUUID();
const ORCHESTRATION_ROUTES: Route[] = [
  {
    method: 'POST',
    path: '/v1/tasks',
    body: { namespace: 'auth_test', name: 'absent', version: '1.0.0', context: {} },
    permission: 'tasks:create',
  },
  { method: 'GET', path: '/v1/tasks', permission: 'tasks:list' },
  { method: 'GET', path: `/v1/tasks/${TASK}`, permission: 'tasks:read' },
  { method: 'DELETE', path: `/v1/tasks/${TASK}`, permission: 'tasks:cancel' },
  { method: 'GET', path: `/v1/tasks/${TASK}/workflow_steps`, permission: 'steps:read' },
  { method: 'GET', path: `/v1/tasks/${TASK}/workflow_steps/${STEP}`, permission: 'steps:read' },
  {
    method: 'PATCH',
    path: `/v1/tasks/${TASK}/workflow_steps/${STEP}`,
    body: { action_type: 'reset_for_retry' },
    permission: 'steps:resolve',
  },
  { method: 'GET', path: '/v1/templates', permission: 'templates:read' },
  { method: 'GET', path: '/v1/templates/auth_test/absent/1.0.0', permission: 'templates:read' },
  { method: 'GET', path: '/v1/workers', permission: 'system:handlers_read' },
  { method: 'GET', path: '/v1/dlq', permission: 'dlq:read' },
  { method: 'GET', path: '/v1/dlq/stats', permission: 'dlq:stats' },
  { method: 'GET', path: `/v1/dlq/entry/${ENTRY}`, permission: 'dlq:read' },
  { method: 'GET', path: `/v1/dlq/task/${TASK}`, permission: 'dlq:read' },
  {
    method: 'PATCH',
    path: `/v1/dlq/entry/${ENTRY}`,
    body: { resolution_status: 'manually_resolved' },
    permission: 'dlq:update',
  },
];
const WORKER_ROUTES: Route[] = [
  { method: 'GET', path: '/v1/templates', permission: 'worker:templates_read' },
];
/** Public with any credentials or none: probes always; the operational endpoints by default. */
const ORCHESTRATION_OPEN = [
  '/health',
  '/health/live',
  '/health/ready',
  '/health/detailed',
  '/metrics',
  '/api-docs/openapi.json',
];
const WORKER_OPEN = ['/health', '/health/live', '/health/ready', '/health/detailed', '/metrics'];

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
}

/** Everything the services answered or printed in this run, searched for credentials at the end. */
const seen: string[] = [];
/** Every credential used in this run. */
const credentials = new Set<string>([
  DB_PASSWORD,
  ORCH_FULL_KEY,
  ORCH_LIMITED_KEY,
  WORKER_FULL_KEY,
  WORKER_LIMITED_KEY,
]);

async function call(
  base: string,
  route: Pick<Route, 'method' | 'path' | 'body'>,
  headers: Record<string, string>,
) {
  const response = await fetch(`${base}${route.path}`, {
    method: route.method,
    headers: { ...headers, ...(route.body !== undefined && { 'content-type': 'application/json' }) },
    ...(route.body !== undefined && { body: JSON.stringify(route.body) }),
  });
  const text = await response.text();
  seen.push(text, JSON.stringify([...response.headers]));
  let json: Answer['json'] = {};
  try {
    json = JSON.parse(text) as Answer['json'];
  } catch {
    // /metrics and the UI are not JSON.
  }
  return { status: response.status, headers: response.headers, text, json } satisfies Answer;
}

function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        seen.push(stdout, stderr);
        resolve({
          code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1,
          stdout,
          stderr,
        });
      },
    );
  });
}

describe('authentication and permissions (real processes)', () => {
  let database: TestDatabase;
  let databaseUrl: string;
  let folder: string;
  let env: Record<string, string>;
  let orchestration: TaskerProcess;
  let worker: TaskerProcess;
  let jwks: JwksServer;
  /** Orchestration's static key. */
  let staticKey: TestKey;
  /** The worker's key in the JWKS, and one that rotates in. */
  let jwksKey: TestKey;
  let rotatedKey: TestKey;
  /** Nobody's key: signatures by it must never verify. */
  let strangerKey: TestKey;

  beforeAll(async () => {
    staticKey = testKey('orch-static');
    jwksKey = testKey('jwks-1');
    rotatedKey = testKey('jwks-2');
    strangerKey = testKey('stranger');
    [database, jwks] = await Promise.all([
      createTestDatabase(),
      publicJwk(jwksKey).then((jwk) => startJwksServer([jwk])),
    ]);
    const url = new URL(database.url);
    url.password = DB_PASSWORD;
    databaseUrl = url.toString();

    folder = mkdtempSync(join(tmpdir(), 'tasker-auth-'));
    cpSync(SHIPPED_CONFIG, join(folder, 'tasker'), { recursive: true });
    writeFileSync(join(folder, 'public.pem'), staticKey.publicPem);
    writeFileSync(join(folder, 'limited.key'), `${ORCH_LIMITED_KEY}\n`);
    writeFileSync(
      join(folder, 'tasker', 'environments', 'test', 'zz-auth.toml'),
      `
[orchestration.web.auth]
enabled = true
jwt_public_key_path = "${join(folder, 'public.pem')}"
jwt_issuer = "${ISSUER}"
jwt_audience = "${AUDIENCE}"

[[orchestration.web.auth.api_keys]]
key_env = "TEST_ORCH_FULL_KEY"
permissions = ["tasks:*", "steps:*", "dlq:*", "templates:*", "system:handlers_read"]
description = "operators"

[[orchestration.web.auth.api_keys]]
key_file = "${join(folder, 'limited.key')}"
permissions = ["worker:templates_read"]
description = "monitoring"

[worker.web.auth]
enabled = true
jwks_url = "${jwks.url}"
jwks_unknown_kid_cooldown_seconds = 1
jwt_issuer = "${ISSUER}"
jwt_audience = "${AUDIENCE}"

[[worker.web.auth.api_keys]]
key = "${WORKER_FULL_KEY}"
permissions = ["worker:*"]

[[worker.web.auth.api_keys]]
key = "${WORKER_LIMITED_KEY}"
permissions = ["tasks:*"]
`,
    );
    env = {
      TASKER_ENV: 'test',
      TASKER_CONFIG_ROOT: folder,
      TEST_ORCH_FULL_KEY: ORCH_FULL_KEY,
      DATABASE_URL: databaseUrl,
    };
    [orchestration, worker] = await Promise.all([
      startOrchestrationProcess({ databaseUrl, env: { ...env, LOG_LEVEL: 'debug' } }),
      startWorkerProcess({ databaseUrl, env: { ...env, LOG_LEVEL: 'debug' } }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([orchestration, worker].filter((p) => p !== undefined).map((p) => stopProcess(p)));
    await jwks?.close();
    await database?.drop();
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  });

  const token = async (key: TestKey, options: TokenOptions = {}) => {
    const signed = await signToken(key, { issuer: ISSUER, audience: AUDIENCE, ...options });
    credentials.add(signed);
    return signed;
  };
  const forged = (value: string) => {
    credentials.add(value);
    return value;
  };
  const bearer = (value: string) => ({ authorization: `Bearer ${value}` });

  type Expected = 401 | 403 | 'allowed';
  interface Case {
    name: string;
    headers: (route: Route) => Promise<Record<string, string>>;
    expected: Expected;
  }

  /** The matrix rows for a service: its own key, its own API keys. */
  function cases(key: () => TestKey, fullKey: string, limitedKey: string): Case[] {
    const others = (route: Route) => PERMISSIONS.filter((p) => p !== route.permission);
    return [
      { name: 'no credentials', headers: () => Promise.resolve({}), expected: 401 },
      { name: 'malformed token', headers: () => Promise.resolve(bearer('not-a.jwt')), expected: 401 },
      {
        name: 'not Bearer',
        headers: () => Promise.resolve({ authorization: 'Basic dXNlcjpwdw==' }),
        expected: 401,
      },
      {
        name: 'expired',
        headers: async (r) => bearer(await token(key(), { permissions: [r.permission], expiresIn: -3600 })),
        expected: 401,
      },
      {
        name: 'not yet valid',
        headers: async (r) => bearer(await token(key(), { permissions: [r.permission], notBefore: 3600 })),
        expected: 401,
      },
      {
        name: 'wrong issuer',
        headers: async (r) =>
          bearer(await token(key(), { permissions: [r.permission], issuer: 'https://evil.test' })),
        expected: 401,
      },
      {
        name: 'wrong audience',
        headers: async (r) =>
          bearer(await token(key(), { permissions: [r.permission], audience: 'another-api' })),
        expected: 401,
      },
      {
        name: 'bad signature',
        headers: async (r) =>
          bearer(await token(strangerKey, { permissions: [r.permission], kid: key().kid })),
        expected: 401,
      },
      {
        name: 'alg none',
        headers: (r) =>
          Promise.resolve(
            bearer(
              forged(unsignedToken({ permissions: [r.permission], issuer: ISSUER, audience: AUDIENCE })),
            ),
          ),
        expected: 401,
      },
      {
        name: 'HS256 keyed with the public key',
        headers: (r) =>
          Promise.resolve(
            bearer(
              forged(
                hmacWithPublicKey(key(), { permissions: [r.permission], issuer: ISSUER, audience: AUDIENCE }),
              ),
            ),
          ),
        expected: 401,
      },
      {
        name: 'unknown kid',
        headers: async (r) =>
          bearer(await token(strangerKey, { permissions: [r.permission], kid: 'no-such-key' })),
        expected: 401,
      },
      {
        name: 'unknown permission in the token (strict)',
        headers: async (r) => bearer(await token(key(), { permissions: [r.permission, 'tasks:delete'] })),
        expected: 401,
      },
      {
        name: 'unknown API key',
        headers: () => Promise.resolve({ 'x-api-key': forged(secret('guess')) }),
        expected: 401,
      },
      {
        name: 'API key without the permission',
        headers: () => Promise.resolve({ 'x-api-key': limitedKey }),
        expected: 403,
      },
      {
        name: 'JWT with every other permission',
        headers: async (r) => bearer(await token(key(), { permissions: others(r) })),
        expected: 403,
      },
      {
        name: 'API key with the permission',
        headers: () => Promise.resolve({ 'x-api-key': fullKey }),
        expected: 'allowed',
      },
      {
        name: 'JWT with exactly the permission',
        headers: async (r) => bearer(await token(key(), { permissions: [r.permission] })),
        expected: 'allowed',
      },
      {
        name: 'JWT with the resource wildcard',
        headers: async (r) =>
          bearer(await token(key(), { permissions: [`${r.permission.split(':')[0]}:*`] })),
        expected: 'allowed',
      },
    ];
  }

  async function checkMatrix(base: () => string, routes: Route[], rows: Case[]): Promise<string[]> {
    const failures: string[] = [];
    for (const route of routes) {
      for (const row of rows) {
        const answer = await call(base(), route, await row.headers(route));
        const label = `${route.method} ${route.path} × ${row.name}: ${answer.status} ${answer.text.slice(0, 160)}`;
        if (row.expected === 'allowed') {
          if (answer.status === 401 || answer.status === 403 || answer.status >= 500) failures.push(label);
          continue;
        }
        if (answer.status !== row.expected) {
          failures.push(label);
          continue;
        }
        const code = row.expected === 401 ? 'TASKER_UNAUTHENTICATED' : 'TASKER_FORBIDDEN';
        if (answer.json.error?.code !== code || typeof answer.json.error.message !== 'string')
          failures.push(`${label} (body)`);
        if (
          row.expected === 401 &&
          !(answer.headers.get('www-authenticate') ?? '').startsWith('Bearer realm="tasker"')
        )
          failures.push(`${label} (WWW-Authenticate)`);
        if (row.expected === 403 && answer.json.error?.details?.required_permission !== route.permission)
          failures.push(`${label} (required_permission)`);
      }
    }
    return failures;
  }

  it('orchestration: every route × every credential answers exactly 401, 403 or the route’s own answer', async () => {
    const failures = await checkMatrix(
      () => orchestration.url,
      ORCHESTRATION_ROUTES,
      cases(() => staticKey, ORCH_FULL_KEY, ORCH_LIMITED_KEY),
    );
    expect(failures).toEqual([]);
    // A refusal carries the request id and says what was missing, never quoting the credential.
    const refused = await call(orchestration.url, ORCHESTRATION_ROUTES[0] as Route, {
      'x-request-id': 'auth-check-1',
    });
    expect(refused.headers.get('x-request-id')).toBe('auth-check-1');
    expect(refused.json.error?.message).toMatch(/credentials required/);
    const expired = await call(
      orchestration.url,
      ORCHESTRATION_ROUTES[1] as Route,
      bearer(await token(staticKey, { expiresIn: -60 })),
    );
    expect(expired.json.error?.message).toMatch(/^the bearer token expired at /);
    expect(expired.headers.get('www-authenticate')).toMatch(
      /error="invalid_token", error_description="the bearer token expired/,
    );
    const forbidden = await call(orchestration.url, ORCHESTRATION_ROUTES[0] as Route, {
      'x-api-key': ORCH_LIMITED_KEY,
    });
    expect(forbidden.json.error?.message).toBe(
      'this route needs permission tasks:create; the API key (orchestration.web.auth.api_keys[1] (monitoring)) grants worker:templates_read',
    );
  }, 60_000);

  it('the worker: its templates route × every credential (tokens from the JWKS)', async () => {
    const failures = await checkMatrix(
      () => worker.url,
      WORKER_ROUTES,
      cases(() => jwksKey, WORKER_FULL_KEY, WORKER_LIMITED_KEY),
    );
    expect(failures).toEqual([]);
  }, 60_000);

  it('probes, and by default /health/detailed, /metrics and the OpenAPI document, answer without credentials', async () => {
    const garbage: Record<string, string>[] = [{}, bearer('garbage'), { 'x-api-key': 'garbage' }];
    for (const [base, paths] of [
      [orchestration.url, ORCHESTRATION_OPEN],
      [worker.url, WORKER_OPEN],
    ] as const) {
      for (const path of paths) {
        for (const headers of garbage) {
          const answer = await call(base, { method: 'GET', path }, headers);
          expect([200, 503], `${base}${path}`).toContain(answer.status);
        }
      }
    }
  });

  it('the OpenAPI document declares both schemes and, per operation, the security and permission', async () => {
    const answer = await call(orchestration.url, { method: 'GET', path: '/api-docs/openapi.json' }, {});
    const document = JSON.parse(answer.text) as {
      components: { securitySchemes: Record<string, unknown> };
      paths: Record<string, Record<string, { security?: unknown; description?: string }>>;
    };
    expect(document.components.securitySchemes).toEqual({
      bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
    });
    const create = document.paths['/v1/tasks']?.post;
    expect(create?.security).toEqual([{ bearerAuth: [] }, { apiKey: [] }]);
    expect(create?.description).toContain('Permission: `tasks:create`.');
    expect(document.paths['/health/live']?.get?.security).toBeUndefined();
    for (const route of ORCHESTRATION_ROUTES) {
      const template = route.path
        .replace(TASK, '{task_uuid}')
        .replace(STEP, '{step_uuid}')
        .replace(ENTRY, '{dlq_entry_uuid}')
        .replace('/auth_test/absent/1.0.0', '/{namespace}/{name}/{version}');
      const operation = document.paths[template]?.[route.method.toLowerCase()];
      expect(operation?.description, `${route.method} ${template}`).toContain(
        `Permission: \`${route.permission}\`.`,
      );
    }
  });

  it('the CLI sends TASKER_API_KEY / TASKER_AUTH_TOKEN (or --api-key / --token) and explains 401 and 403', async () => {
    const base = {
      TASKER_ENV: 'test',
      TASKER_URL: orchestration.url,
      TASKER_AUTH_TOKEN: '',
      TASKER_API_KEY: '',
    };
    const ok = await run(['task', 'list', '--json'], { ...base, TASKER_API_KEY: ORCH_FULL_KEY });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const listed = await run(
      ['task', 'list', '--json', '--token', await token(staticKey, { permissions: ['tasks:list'] })],
      base,
    );
    expect(listed.code).toBe(0);

    const none = await run(['task', 'list'], base);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/credentials required.*\[TASKER_UNAUTHENTICATED\]/);
    expect(none.stderr).toContain(
      'no credentials were sent: set TASKER_AUTH_TOKEN (a JWT) or TASKER_API_KEY',
    );

    const expired = await token(staticKey, { permissions: ['tasks:list'], expiresIn: -60 });
    const stale = await run(['task', 'list'], { ...base, TASKER_AUTH_TOKEN: expired });
    expect(stale.stderr).toMatch(/the bearer token expired at .*\[TASKER_UNAUTHENTICATED\]/);
    expect(stale.stderr).toContain('a bearer token was sent (from TASKER_AUTH_TOKEN)');

    const limited = await run(['task', 'list', '--api-key', ORCH_LIMITED_KEY], base);
    expect(limited.stderr).toMatch(/needs permission tasks:list.*\[TASKER_FORBIDDEN\]/);
    expect(limited.stderr).toContain('an API key was sent (from --api-key)');
  }, 60_000);

  it('tasker auth: generate-keys, generate-token and validate-token work together and with the services', async () => {
    const keys = join(folder, 'cli-keys');
    const generated = await run(['auth', 'generate-keys', '--out', keys], env);
    expect(generated.code, generated.stderr).toBe(0);
    expect(generated.stdout).toContain(`wrote ${join(keys, 'private.pem')}`);
    const minted = await run(
      [
        'auth',
        'generate-token',
        '--private-key',
        join(keys, 'private.pem'),
        '--permissions',
        'tasks:list,dlq:*',
        '--expires-in',
        '10m',
        '--issuer',
        ISSUER,
        '--audience',
        AUDIENCE,
      ],
      env,
    );
    expect(minted.code, minted.stderr).toBe(0);
    const cliToken = minted.stdout.trim();
    // Printing the token is this command's job: its stdout is the one output not searched for credentials.
    seen.splice(seen.indexOf(minted.stdout), 1);
    credentials.add(cliToken);
    const valid = await run(
      ['auth', 'validate-token', cliToken, '--public-key', join(keys, 'public.pem')],
      env,
    );
    expect(valid.code, valid.stderr).toBe(0);
    expect(valid.stdout).toContain('permissions: tasks:list, dlq:read, dlq:update, dlq:stats');
    // The configured orchestration key did not sign it: refused as the service would refuse it.
    const refused = await run(['auth', 'validate-token', cliToken], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /not valid for orchestration: the bearer token's signature does not verify/,
    );
    const global = await run(
      ['auth', 'generate-token', '--private-key', join(keys, 'private.pem'), '--permissions', '*'],
      env,
    );
    expect(global.stderr).toMatch(/global wildcard "\*" is refused/);
    const shown = await run(['auth', 'show-permissions'], env);
    expect(shown.stdout.match(/^ {4}[a-z]+:[a-z_]+$/gm)).toHaveLength(PERMISSIONS.length);
  }, 60_000);

  it('JWKS rotation: a new kid is fetched on first sight; a removed key is refused after the next refresh', async () => {
    const templates = WORKER_ROUTES[0] as Route;
    const oldToken = await token(jwksKey, { permissions: ['worker:templates_read'] });
    expect((await call(worker.url, templates, bearer(oldToken))).status).toBe(200);
    const newToken = await token(rotatedKey, { permissions: ['worker:templates_read'] });
    // Signed by a key the set does not have yet: refused, whatever the kid says.
    const fetchesBefore = jwks.fetches;
    expect((await call(worker.url, templates, bearer(newToken))).status).toBe(401);

    // The identity provider publishes the new key beside the old one (cooldown 1 s between refreshes).
    jwks.setKeys([await publicJwk(jwksKey), await publicJwk(rotatedKey)]);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await call(worker.url, templates, bearer(newToken))).status).toBe(200);
    expect(jwks.fetches).toBeGreaterThan(fetchesBefore);
    expect((await call(worker.url, templates, bearer(oldToken))).status).toBe(200);

    // Random kids within the cooldown do not reach the JWKS server.
    const fetchesAfterRotation = jwks.fetches;
    for (let i = 0; i < 5; i++)
      await call(worker.url, templates, bearer(await token(strangerKey, { kid: `random-${i}` })));
    expect(jwks.fetches).toBe(fetchesAfterRotation);

    // The old key is withdrawn; the next refresh (an unknown kid after the cooldown) drops it.
    jwks.setKeys([await publicJwk(rotatedKey)]);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await call(worker.url, templates, bearer(await token(strangerKey, { kid: 'trigger-refresh' })));
    const refused = await call(worker.url, templates, bearer(oldToken));
    expect(refused.status).toBe(401);
    expect(refused.json.error?.message).toBe("no key in the key set matches the bearer token's key id (kid)");
    expect((await call(worker.url, templates, bearer(newToken))).status).toBe(200);
  }, 30_000);

  it('no credential appears in logs, config show, error bodies, /health/detailed, /metrics or CLI output', async () => {
    for (const [base, path] of [
      [orchestration.url, '/health/detailed'],
      [orchestration.url, '/metrics'],
      [worker.url, '/health/detailed'],
      [worker.url, '/metrics'],
    ] as const)
      await call(base, { method: 'GET', path }, {});
    for (const args of [
      ['config', 'show'],
      ['config', 'show', '--json'],
      ['config', 'show', '--sources'],
      ['config', 'validate'],
    ]) {
      const shown = await run(args, env);
      expect(shown.code, shown.stderr).toBe(0);
    }
    const validated = seen[seen.length - 2] ?? '';
    expect(validated).toContain('Auth (orchestration): on, bearer tokens (static key), 2 API key(s)');
    expect(validated).toContain('Auth (worker): on, bearer tokens (JWKS), 2 API key(s)');
    const outputs = [
      ...seen,
      ...[orchestration, worker].flatMap((p) => [
        ...p.logs.map((line) => JSON.stringify(line)),
        ...p.otherOutput,
      ]),
    ].join('\n');
    // The run did log requests and refusals (debug), so an empty log cannot pass this.
    expect(orchestration.logs.some((line) => line.msg === 'http request')).toBe(true);
    expect(credentials.size).toBeGreaterThan(100);
    const leaked = [...credentials].filter((credential) => outputs.includes(credential));
    expect(leaked.map((c) => `${c.slice(0, 12)}…`)).toEqual([]);
    // Nor the signature part of any token alone.
    const signatures = [...credentials]
      .filter((c) => c.split('.').length === 3)
      .map((c) => c.split('.')[2] ?? '');
    expect(signatures.filter((s) => s.length > 20 && outputs.includes(s))).toEqual([]);
  }, 60_000);
});
