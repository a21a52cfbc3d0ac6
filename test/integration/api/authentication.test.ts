/**
 * The authenticator inside a real REST server on a real database, for what the end-to-end matrix
 * (test/e2e/authentication.test.ts) does not reach: protected operational endpoints, a JWKS that goes away
 * (stale grace, then 503), one credential per request, tokens without `exp`, and the production warning.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { Authenticator } from '../../../src/api/auth/authenticator.ts';
import { buildRestServer } from '../../../src/api/rest/server.ts';
import type { AuthSettings } from '../../../src/config/authSettings.ts';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import { serviceAuthenticator } from '../../../src/services/serviceAuth.ts';
import { publicJwk, signToken, startJwksServer, testKey } from '../../helpers/auth/tokens.ts';
import { createMemoryLogger, LOG_LEVEL } from '../../helpers/engine/memoryLogger.ts';
import { useApi } from './apiHarness.ts';
import type { ErrorBody } from './viewTypes.ts';

const getApi = useApi({ engine: false });
const KEY = 'a-scrape-key-with-no-permissions';
const servers: FastifyInstance[] = [];
afterAll(async () => {
  for (const app of servers) await app.close();
});

function settings(overrides: Partial<AuthSettings>): AuthSettings {
  return {
    enabled: true,
    publicKeyPem: undefined,
    jwksUrl: undefined,
    jwksRefreshIntervalMs: 3_600_000,
    jwksStaleGraceMs: 300_000,
    jwksUnknownKidCooldownMs: 30_000,
    algorithms: ['RS256'],
    issuer: undefined,
    audience: undefined,
    clockSkewSeconds: 30,
    permissionsClaim: 'permissions',
    apiKeys: [],
    strictValidation: true,
    protectOperationalEndpoints: false,
    ...overrides,
  };
}

async function server(auth: AuthSettings): Promise<FastifyInstance> {
  const app = await buildRestServer({
    db: getApi().db,
    auth: new Authenticator(auth, createMemoryLogger().logger),
  });
  servers.push(app);
  return app;
}

describe('the REST server with auth on', () => {
  it('protect_operational_endpoints: /metrics-like endpoints need a valid credential of any permission; probes never', async () => {
    const key = testKey('k');
    const app = await server(
      settings({
        publicKeyPem: key.publicPem,
        protectOperationalEndpoints: true,
        apiKeys: [{ key: KEY, permissions: [], description: 'prometheus', path: 'p[0]' }],
      }),
    );
    for (const url of ['/health/detailed', '/api-docs/openapi.json', '/api-docs']) {
      expect((await app.inject({ url })).statusCode, url).toBe(401);
      expect((await app.inject({ url, headers: { 'x-api-key': KEY } })).statusCode, url).not.toBe(401);
    }
    for (const url of ['/health', '/health/live', '/health/ready'])
      expect([200, 503]).toContain((await app.inject({ url })).statusCode);
    // Authenticated is not authorized: the key has no permission for the API itself.
    const tasks = await app.inject({ url: '/v1/tasks', headers: { 'x-api-key': KEY } });
    expect(tasks.statusCode).toBe(403);
    expect(tasks.json()).toMatchObject({
      error: { code: 'TASKER_FORBIDDEN', details: { required_permission: 'tasks:list', granted: [] } },
    });
  });

  it('refuses both credentials at once, tokens without exp, and a permissions claim that is not a string array', async () => {
    const key = testKey('k');
    const app = await server(
      settings({
        publicKeyPem: key.publicPem,
        apiKeys: [{ key: KEY, permissions: ['tasks:*'], description: '', path: 'p' }],
      }),
    );
    const token = await signToken(key, { permissions: ['tasks:list'] });
    const both = await app.inject({
      url: '/v1/tasks',
      headers: { authorization: `Bearer ${token}`, 'x-api-key': KEY },
    });
    expect(both.statusCode).toBe(401);
    expect(both.json<ErrorBody>().error.message).toMatch(/send one credential/);

    const { SignJWT } = await import('jose');
    const forever = await new SignJWT({ permissions: ['tasks:list'] })
      .setProtectedHeader({ alg: 'RS256' })
      .sign(key.privateKey);
    const noExp = await app.inject({ url: '/v1/tasks', headers: { authorization: `Bearer ${forever}` } });
    expect(noExp.statusCode).toBe(401);
    const odd = await new SignJWT({ permissions: 'tasks:list' })
      .setProtectedHeader({ alg: 'RS256' })
      .setExpirationTime('5m')
      .sign(key.privateKey);
    const claim = await app.inject({ url: '/v1/tasks', headers: { authorization: `Bearer ${odd}` } });
    expect(claim.json<ErrorBody>().error.message).toBe(
      "the bearer token's permissions claim must be an array of strings",
    );
    expect(
      (await app.inject({ url: '/v1/tasks', headers: { authorization: `Bearer ${token}` } })).statusCode,
    ).toBe(200);
  });

  it('a JWKS that goes away: the last set verifies within its stale grace, then 503 TASKER_AUTH_UNAVAILABLE', async () => {
    const key = testKey('k1');
    const jwks = await startJwksServer([await publicJwk(key)]);
    const clock = { refresh: 100, grace: 800 };
    try {
      const app = await server(
        settings({
          jwksUrl: jwks.url,
          jwksRefreshIntervalMs: clock.refresh,
          jwksStaleGraceMs: clock.grace,
          jwksUnknownKidCooldownMs: 1_000,
        }),
      );
      const token = await signToken(key, { permissions: ['tasks:list'] });
      const ask = () => app.inject({ url: '/v1/tasks', headers: { authorization: `Bearer ${token}` } });
      expect((await ask()).statusCode).toBe(200);
      await jwks.close();
      // Past the refresh interval, within the grace: the refresh fails, the old set still verifies. A fresh
      // token, so the verified-token cache does not answer for the key set.
      await new Promise((resolve) => setTimeout(resolve, clock.refresh + 50));
      const again = await signToken(key, { permissions: ['tasks:list'], subject: 'second' });
      expect(
        (await app.inject({ url: '/v1/tasks', headers: { authorization: `Bearer ${again}` } })).statusCode,
      ).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, clock.grace + 100));
      const third = await signToken(key, { permissions: ['tasks:list'], subject: 'third' });
      const unavailable = await app.inject({
        url: '/v1/tasks',
        headers: { authorization: `Bearer ${third}` },
      });
      expect(unavailable.statusCode).toBe(503);
      expect(unavailable.headers['retry-after']).toBe('5');
      expect(unavailable.json<ErrorBody>().error.code).toBe('TASKER_AUTH_UNAVAILABLE');
    } finally {
      await jwks.close();
    }
  });

  it('production with auth turned off starts, with a warning at every start', () => {
    const loaded = loadConfig({ env: { TASKER_ENV: 'production', TASKER_AUTH_ENABLED: 'false' } });
    const memory = createMemoryLogger();
    expect(serviceAuthenticator(loaded, 'orchestration', memory.logger)).toBeUndefined();
    expect(memory.atLeast(LOG_LEVEL.warn).map((entry) => entry.msg)).toEqual([
      'authentication is off in production: anyone who reaches the HTTP port can create, cancel and resolve work (docs/security.md)',
    ]);
  });
});
