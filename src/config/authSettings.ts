import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../domain/errors.ts';
import type { ConfigProblem } from '../domain/errors.ts';
import type { Env } from './environmentOverrides.ts';
import type { LoadedConfig } from './loadConfig.ts';
import { sourceOf } from './validateConfig.ts';

export interface ResolvedApiKey {
  key: string;
  permissions: readonly string[];
  description: string;
  /** Where it was configured, e.g. `orchestration.web.auth.api_keys[0]` (logs name keys by it). */
  path: string;
}

/** `[<role>.web.auth]` with its key material read: what the verifier needs and nothing to look up later. */
export interface AuthSettings {
  enabled: boolean;
  /** PEM of the static key (from jwt_public_key or the file at jwt_public_key_path). */
  publicKeyPem: string | undefined;
  jwksUrl: string | undefined;
  jwksRefreshIntervalMs: number;
  jwksStaleGraceMs: number;
  jwksUnknownKidCooldownMs: number;
  algorithms: readonly string[];
  issuer: string | undefined;
  audience: string | undefined;
  clockSkewSeconds: number;
  permissionsClaim: string;
  apiKeys: readonly ResolvedApiKey[];
  strictValidation: boolean;
  protectOperationalEndpoints: boolean;
}

function readSecretFile(file: string, cwd: string): { text: string } | { error: string } {
  try {
    const text = readFileSync(resolve(cwd, file), 'utf8').trim();
    return text === '' ? { error: `the file ${file} is empty` } : { text };
  } catch (error) {
    return {
      error: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    };
  }
}

/**
 * Resolves `[<role>.web.auth]` for a service about to start: reads the public key file and the API keys'
 * variables and files. A service with auth on and nothing to authenticate with would refuse every request,
 * so that is an error naming the keys to set; so is an unreadable file or an unset variable.
 * @throws ConfigError naming each key path
 */
export function resolveAuthSettings(
  loaded: LoadedConfig,
  role: 'orchestration' | 'worker',
  options: {
    env?: Env;
    cwd?: string;
    /** Read the key material even when auth is off (`tasker auth validate-token`). */
    evenIfDisabled?: boolean;
  } = {},
): AuthSettings {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const auth = loaded.config[role].web.auth;
  const base = `${role}.web.auth`;
  const problems: ConfigProblem[] = [];
  const problem = (path: string, message: string): void => {
    problems.push({ source: sourceOf(loaded.provenance, path.split(/[.[]/)), path, message });
  };
  const settings: AuthSettings = {
    enabled: auth.enabled,
    publicKeyPem: undefined,
    jwksUrl: auth.jwks_url === '' ? undefined : auth.jwks_url,
    jwksRefreshIntervalMs: auth.jwks_refresh_interval_seconds * 1000,
    jwksStaleGraceMs: auth.jwks_stale_grace_seconds * 1000,
    jwksUnknownKidCooldownMs: auth.jwks_unknown_kid_cooldown_seconds * 1000,
    algorithms: auth.jwt_allowed_algorithms,
    issuer: auth.jwt_issuer === '' ? undefined : auth.jwt_issuer,
    audience: auth.jwt_audience === '' ? undefined : auth.jwt_audience,
    clockSkewSeconds: auth.jwt_clock_skew_seconds,
    permissionsClaim: auth.permissions_claim,
    apiKeys: [],
    strictValidation: auth.strict_validation,
    protectOperationalEndpoints: auth.protect_operational_endpoints,
  };
  if (!auth.enabled && options.evenIfDisabled !== true) return settings;

  if (auth.jwt_public_key !== '') settings.publicKeyPem = auth.jwt_public_key.trim();
  if (auth.jwt_public_key_path !== '') {
    const read = readSecretFile(auth.jwt_public_key_path, cwd);
    if ('error' in read) problem(`${base}.jwt_public_key_path`, read.error);
    else if (!read.text.startsWith('-----BEGIN PUBLIC KEY-----'))
      problem(
        `${base}.jwt_public_key_path`,
        `${auth.jwt_public_key_path} does not hold a PEM public key (-----BEGIN PUBLIC KEY-----); a private key never belongs on the server`,
      );
    else settings.publicKeyPem = read.text;
  }
  const apiKeys: ResolvedApiKey[] = [];
  auth.api_keys.forEach((entry, index) => {
    const path = `${base}.api_keys[${index}]`;
    let key: string | undefined;
    if (entry.key !== '') key = entry.key;
    else if (entry.key_env !== '') {
      const value = env[entry.key_env]?.trim() ?? '';
      if (value === '')
        problem(`${path}.key_env`, `environment variable ${entry.key_env} is not set (or is empty)`);
      else key = value;
    } else if (entry.key_file !== '') {
      const read = readSecretFile(entry.key_file, cwd);
      if ('error' in read) problem(`${path}.key_file`, read.error);
      else key = read.text;
    }
    if (key !== undefined && key.length < 16)
      problem(
        path,
        'the key is shorter than 16 characters: use a long random key (e.g. `openssl rand -hex 32`)',
      );
    else if (key !== undefined)
      apiKeys.push({ key, permissions: entry.permissions, description: entry.description, path });
  });
  settings.apiKeys = apiKeys;
  if (
    auth.jwt_public_key === '' &&
    auth.jwt_public_key_path === '' &&
    auth.jwks_url === '' &&
    auth.api_keys.length === 0
  ) {
    problem(
      base,
      `${auth.enabled ? 'auth is enabled but nothing can authenticate' : 'no key source is configured'}: set ${base}.jwt_public_key_path (or jwt_public_key, or jwks_url) for bearer tokens and/or add [[${base}.api_keys]]; the shipped production configuration fills them from TASKER_JWT_PUBLIC_KEY_PATH, TASKER_JWT_PUBLIC_KEY or TASKER_JWKS_URL. Turning auth off (TASKER_AUTH_ENABLED=false) leaves the API open to anyone who reaches the port`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return settings;
}
