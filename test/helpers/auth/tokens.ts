/**
 * Keys and tokens for the authentication tests: RSA key pairs, tokens signed as an identity provider would
 * sign them, and the forgeries an attacker would try (alg none, HS256 keyed with the public key).
 */
import { createHmac, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, SignJWT } from 'jose';
import type { JWK } from 'jose';

export interface TestKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicPem: string;
}

export function testKey(kid: string): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    kid,
    privateKey,
    publicKey,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export async function publicJwk(key: TestKey): Promise<JWK> {
  return { ...(await exportJWK(createPublicKey(key.publicPem))), kid: key.kid, alg: 'RS256', use: 'sig' };
}

export interface TokenOptions {
  permissions?: readonly string[];
  issuer?: string;
  audience?: string;
  /** Seconds from now. @defaultValue 600 */
  expiresIn?: number;
  /** Seconds from now. @defaultValue -10 */
  notBefore?: number;
  /** Header kid. @defaultValue the key's */
  kid?: string | null;
  subject?: string;
}

export async function signToken(key: TestKey, options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT({ permissions: [...(options.permissions ?? [])] })
    .setProtectedHeader({
      alg: 'RS256',
      typ: 'JWT',
      ...(options.kid !== null && { kid: options.kid ?? key.kid }),
    })
    .setSubject(options.subject ?? 'test-user')
    .setIssuedAt(now - 20)
    .setNotBefore(now + (options.notBefore ?? -10))
    .setExpirationTime(now + (options.expiresIn ?? 600));
  if (options.issuer !== undefined) jwt = jwt.setIssuer(options.issuer);
  if (options.audience !== undefined) jwt = jwt.setAudience(options.audience);
  return jwt.sign(key.privateKey);
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function claims(options: TokenOptions): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    sub: 'attacker',
    iat: now,
    exp: now + 600,
    permissions: options.permissions ?? [],
    ...(options.issuer !== undefined && { iss: options.issuer }),
    ...(options.audience !== undefined && { aud: options.audience }),
  };
}

/** An unsecured JWT (RFC 7519 §6): no signature at all. */
export function unsignedToken(options: TokenOptions = {}): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims(options))}.`;
}

/** The algorithm-confusion forgery: HS256 with the server's public key (PEM text) as the HMAC secret. */
export function hmacWithPublicKey(key: TestKey, options: TokenOptions = {}): string {
  const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: key.kid })}.${b64(claims(options))}`;
  return `${input}.${createHmac('sha256', key.publicPem).update(input).digest('base64url')}`;
}

/** A JWKS endpoint whose key set the test changes as it goes (key rotation). */
export interface JwksServer {
  url: string;
  setKeys(keys: readonly JWK[]): void;
  /** Requests served so far. */
  readonly fetches: number;
  close(): Promise<void>;
}

export async function startJwksServer(keys: readonly JWK[]): Promise<JwksServer> {
  let current = [...keys];
  let fetches = 0;
  const server: Server = createServer((_request, response) => {
    fetches += 1;
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ keys: current }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    setKeys: (next) => {
      current = [...next];
    },
    get fetches() {
      return fetches;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
