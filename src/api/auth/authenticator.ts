import { createHash, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { errors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { PermissionSet } from '../../domain/auth/permissions.ts';
import type { Permission } from '../../domain/auth/permissions.ts';
import { ConfigError } from '../../domain/errors.ts';
import type { AuthSettings } from '../../config/authSettings.ts';
import type { Logger } from '../../observability/logger.ts';
import { ApiError, quoteInput } from '../rest/apiError.ts';
import { ApiKeyRegistry } from './apiKeyRegistry.ts';
import { JwksKeySource, KeySetUnavailableError } from './jwksKeySource.ts';

/** Who is calling: what the credential was (never the credential itself) and what it may do. */
export interface Principal {
  credential: 'bearer token' | 'API key';
  /** The token's `sub`, or the API key's configured path and description. */
  subject: string;
  permissions: PermissionSet;
}

const REALM = 'Bearer realm="tasker"';

/** Verified tokens remembered (by SHA-256), so a client reusing its token costs no signature check. */
const VERIFIED_CACHE_SIZE = 10_000;
/** A remembered token is checked again after this long at most (and never past its `exp`). */
const VERIFIED_CACHE_TTL_MS = 300_000;

interface VerifiedToken {
  principal: Principal;
  expiresAt: number;
  /** The key set it was verified with: a refreshed set (a key withdrawn) forgets every token. */
  keyGeneration: number;
}

/** A `WWW-Authenticate` value (RFC 6750 §3): the description quoted without characters that break it. */
function challenge(error: 'invalid_request' | 'invalid_token' | undefined, description: string): string {
  if (error === undefined) return REALM;
  const safe = description.replace(/["\\\p{Cc}]/gu, "'");
  return `${REALM}, error="${error}", error_description="${safe}"`;
}

function unauthenticated(
  message: string,
  error: 'invalid_request' | 'invalid_token' | undefined,
  details: Record<string, unknown> = {},
): ApiError {
  return new ApiError(401, 'TASKER_UNAUTHENTICATED', message, {
    headers: { 'www-authenticate': challenge(error, message) },
    details,
  });
}

/** jose's refusal, said in terms of the token (never quoting it). */
function tokenRefusal(error: unknown): string {
  if (error instanceof errors.JWTExpired) {
    const exp = error.payload.exp;
    return `the bearer token expired${typeof exp === 'number' ? ` at ${new Date(exp * 1000).toISOString()}` : ''}`;
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'nbf':
        return 'the bearer token is not valid yet (nbf is in the future)';
      case 'iat':
        return 'the bearer token was issued in the future (iat)';
      case 'iss':
        return 'the bearer token was issued by an issuer this service does not accept (iss)';
      case 'aud':
        return 'the bearer token is meant for another audience (aud)';
      default:
        return `the bearer token's ${error.claim} claim is not valid`;
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed)
    return 'the bearer token is signed with an algorithm this service does not accept (alg)';
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return "the bearer token's signature does not verify";
  if (error instanceof errors.JWKSNoMatchingKey)
    return "no key in the key set matches the bearer token's key id (kid)";
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid)
    return 'the bearer token is not a well-formed JWT';
  return 'the bearer token could not be verified';
}

/**
 * Verifies the credentials of a request: `Authorization: Bearer <JWT>` (static key or JWKS, allowed
 * algorithms, issuer, audience, clock skew, permissions claim) or `X-API-Key`. Built once per server from
 * resolved settings; refusals are ApiErrors (401 TASKER_UNAUTHENTICATED with WWW-Authenticate, 503
 * TASKER_AUTH_UNAVAILABLE when the key set cannot be fetched) whose messages never quote the credential.
 */
export class Authenticator {
  readonly protectOperationalEndpoints: boolean;
  private readonly key: KeyObject | JWTVerifyGetKey | undefined;
  private readonly jwks: JwksKeySource | undefined;
  private readonly verified = new Map<string, VerifiedToken>();
  private readonly apiKeys: ApiKeyRegistry;
  private readonly verifyOptions: Parameters<typeof jwtVerify>[2];

  constructor(
    private readonly settings: AuthSettings,
    logger: Logger,
  ) {
    this.protectOperationalEndpoints = settings.protectOperationalEndpoints;
    if (settings.publicKeyPem !== undefined) {
      try {
        this.key = createPublicKey(settings.publicKeyPem);
      } catch (error) {
        throw new ConfigError([
          {
            source: 'auth',
            path: 'web.auth.jwt_public_key',
            message: `not a usable public key: ${(error as Error).message}`,
          },
        ]);
      }
    } else if (settings.jwksUrl !== undefined) {
      this.jwks = new JwksKeySource({
        url: settings.jwksUrl,
        refreshIntervalMs: settings.jwksRefreshIntervalMs,
        staleGraceMs: settings.jwksStaleGraceMs,
        unknownKidCooldownMs: settings.jwksUnknownKidCooldownMs,
        logger,
      });
      this.key = this.jwks.getKey;
    }
    this.apiKeys = new ApiKeyRegistry(settings.apiKeys);
    this.verifyOptions = {
      algorithms: [...settings.algorithms],
      clockTolerance: settings.clockSkewSeconds,
      ...(settings.issuer !== undefined && { issuer: settings.issuer }),
      ...(settings.audience !== undefined && { audience: settings.audience }),
      // A token that never expires cannot be contained once leaked.
      requiredClaims: ['exp'],
    };
  }

  /** The caller of a request, from its headers. @throws ApiError 401 (or 503 when the key set is away) */
  async authenticate(
    authorization: string | undefined,
    apiKey: string | string[] | undefined,
  ): Promise<Principal> {
    if (authorization !== undefined && apiKey !== undefined)
      throw unauthenticated(
        'send one credential: both an Authorization header and X-API-Key were sent',
        'invalid_request',
      );
    if (apiKey !== undefined) return this.fromApiKey(apiKey);
    if (authorization === undefined) {
      throw unauthenticated(
        'credentials required: send Authorization: Bearer <JWT> or X-API-Key: <key> (the CLI reads TASKER_AUTH_TOKEN or TASKER_API_KEY)',
        undefined,
      );
    }
    const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(authorization);
    if (match?.[1] === undefined)
      throw unauthenticated('the Authorization header must be "Bearer <JWT>"', 'invalid_request');
    return this.fromToken(match[1]);
  }

  private fromApiKey(apiKey: string | string[]): Principal {
    if (Array.isArray(apiKey))
      throw unauthenticated('send one X-API-Key header, not several', 'invalid_request');
    const holder = this.apiKeys.size === 0 ? undefined : this.apiKeys.find(apiKey);
    if (holder === undefined) {
      throw unauthenticated(
        this.apiKeys.size === 0
          ? 'this service accepts no API keys; send Authorization: Bearer <JWT>'
          : 'the API key (X-API-Key) is not one this service knows',
        'invalid_token',
      );
    }
    return {
      credential: 'API key',
      subject: holder.description === '' ? holder.path : `${holder.path} (${holder.description})`,
      permissions: holder.permissions,
    };
  }

  private async fromToken(token: string): Promise<Principal> {
    if (this.key === undefined)
      throw unauthenticated('this service accepts no bearer tokens; send X-API-Key', 'invalid_token');
    // The RSA check (tens of µs of CPU, and a thread-pool hop in WebCrypto) runs once per token, not per
    // request. Keyed by digest so the tokens themselves are not kept.
    const digest = createHash('sha256').update(token).digest('base64url');
    const generation = this.jwks?.generation ?? 0;
    const remembered = this.verified.get(digest);
    if (remembered !== undefined) {
      if (remembered.keyGeneration === generation && Date.now() < remembered.expiresAt)
        return remembered.principal;
      this.verified.delete(digest);
    }
    let payload: JWTPayload;
    try {
      // Two overloads (a key, a key lookup): the union is resolved at construction, once.
      payload =
        typeof this.key === 'function'
          ? (await jwtVerify(token, this.key, this.verifyOptions)).payload
          : (await jwtVerify(token, this.key, this.verifyOptions)).payload;
    } catch (error) {
      if (error instanceof KeySetUnavailableError) {
        throw new ApiError(503, 'TASKER_AUTH_UNAVAILABLE', `${error.message}; retry later`, {
          headers: { 'retry-after': '5' },
        });
      }
      const message = tokenRefusal(error);
      throw unauthenticated(message, 'invalid_token');
    }
    const claim = payload[this.settings.permissionsClaim];
    if (claim !== undefined && !(Array.isArray(claim) && claim.every((p) => typeof p === 'string'))) {
      throw unauthenticated(
        `the bearer token's ${this.settings.permissionsClaim} claim must be an array of strings`,
        'invalid_token',
      );
    }
    const permissions = new PermissionSet(claim ?? []);
    if (this.settings.strictValidation && permissions.unknown.length > 0) {
      throw unauthenticated(
        `the bearer token grants permissions this service does not know: ${permissions.unknown
          .slice(0, 5)
          .map((p) => quoteInput(p, 40))
          .join(', ')} (strict_validation)`,
        'invalid_token',
      );
    }
    const principal: Principal = {
      credential: 'bearer token',
      subject: typeof payload.sub === 'string' ? `subject ${quoteInput(payload.sub, 80)}` : 'no subject',
      permissions,
    };
    this.remember(digest, principal, payload.exp, generation);
    return principal;
  }

  private remember(digest: string, principal: Principal, exp: number | undefined, generation: number): void {
    if (exp === undefined) return;
    const expiresAt = Math.min(exp * 1000, Date.now() + VERIFIED_CACHE_TTL_MS);
    // Oldest first out: a Map iterates in insertion order.
    if (this.verified.size >= VERIFIED_CACHE_SIZE) {
      const oldest = this.verified.keys().next();
      if (oldest.done !== true) this.verified.delete(oldest.value);
    }
    // Tagged with the set in use before verifying: a set fetched meanwhile (this request's unknown kid, or a
    // concurrent refresh) makes the entry stale, which costs one more check, never a withdrawn key's pass.
    this.verified.set(digest, { principal, expiresAt, keyGeneration: generation });
  }
}

/** 403 for a caller without the permission the route declares. */
export function forbidden(principal: Principal, permission: Permission): ApiError {
  const granted = principal.permissions.list();
  return new ApiError(
    403,
    'TASKER_FORBIDDEN',
    `this route needs permission ${permission}; the ${principal.credential} (${principal.subject}) grants ${
      granted.length === 0 ? 'none' : granted.join(', ')
    }`,
    { details: { required_permission: permission, credential: principal.credential, granted } },
  );
}
