/**
 * Who may call each route. Every route declares its access in its options (`config: { access }`), next to
 * its path; this module enforces it in an onRequest hook, before the body is read, and writes it into the
 * OpenAPI document. A route that declares nothing fails the server's build: a forgotten declaration can
 * never leave a route open.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Permission } from '../../domain/auth/permissions.ts';
import { ApiError } from '../rest/apiError.ts';
import { forbidden } from './authenticator.ts';
import type { Authenticator } from './authenticator.ts';

/**
 * `public`: probes, never behind credentials (Kubernetes must reach them). `operational`: /health/detailed,
 * /metrics and the OpenAPI document and UI, which need a valid credential only with
 * protect_operational_endpoints. Otherwise the one permission the route needs.
 */
type RouteAccess = 'public' | 'operational' | { permission: Permission };

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

/** The OpenAPI UI's own routes (registered by @fastify/swagger-ui, which cannot declare access). */
const DOCS_PREFIX = '/api-docs';

export const SECURITY_SCHEMES = {
  bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
  apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
} as const;

function accessOf(url: string, access: RouteAccess | undefined): RouteAccess {
  if (access !== undefined) return access;
  if (url === DOCS_PREFIX || url.startsWith(`${DOCS_PREFIX}/`)) return 'operational';
  throw new Error(
    `route ${url} declares no access: add config: { access: { permission: '…' } } (or 'public' / 'operational')`,
  );
}

/** The error body of every refusal, the same shape as every other error (docs/errors.md). */
function refuse(reply: FastifyReply, error: ApiError): FastifyReply {
  for (const [name, value] of Object.entries(error.headers)) void reply.header(name, value);
  const details = Object.keys(error.details).length > 0 ? { details: error.details } : {};
  return reply
    .code(error.status)
    .type('application/json; charset=utf-8')
    .send({ error: { code: error.code, message: error.message, ...details } });
}

/**
 * Checks every route's declaration as it is registered (call before registering routes), annotates the
 * OpenAPI operations, and, with an authenticator, refuses requests without the credentials their route
 * needs. Requests no route matches pass through to the 404/405 answer, which reveals only what the
 * public API reference says anyway.
 */
export function registerRouteAccess(app: FastifyInstance, authenticator: Authenticator | undefined): void {
  app.addHook('onRoute', (route) => {
    const access = accessOf(route.url, route.config?.access);
    route.config = { ...route.config, access };
    if (typeof access !== 'object' || route.schema === undefined) return;
    const description = route.schema.description;
    route.schema = {
      ...route.schema,
      description: `${description === undefined ? '' : `${description}\n\n`}Permission: \`${access.permission}\`.`,
      ...(authenticator !== undefined && { security: [{ bearerAuth: [] }, { apiKey: [] }] }),
    };
  });
  if (authenticator === undefined) return;

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.is404) return;
    const access = request.routeOptions.config.access;
    if (access === 'public') return;
    if (access === 'operational' && !authenticator.protectOperationalEndpoints) return;
    let principal;
    try {
      principal = await authenticator.authenticate(
        request.headers.authorization,
        request.headers['x-api-key'],
      );
    } catch (error) {
      if (error instanceof ApiError) return refuse(reply, error);
      throw error;
    }
    if (typeof access === 'object' && !principal.permissions.has(access.permission))
      return refuse(reply, forbidden(principal, access.permission));
  });
}
