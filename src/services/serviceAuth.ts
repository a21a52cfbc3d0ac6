import { Authenticator } from '../api/auth/authenticator.ts';
import { resolveAuthSettings } from '../config/authSettings.ts';
import type { LoadedConfig } from '../config/loadConfig.ts';
import type { Logger } from '../observability/logger.ts';

/**
 * The authenticator of a service's HTTP API from `[<role>.web.auth]`, or undefined when auth is off. Runs
 * before anything starts, so a missing key source or an unreadable secret file stops the service with a
 * ConfigError naming the key. Auth off in production is allowed (an explicit setting) but said at every start.
 */
export function serviceAuthenticator(
  loaded: LoadedConfig,
  role: 'orchestration' | 'worker',
  logger: Logger,
): Authenticator | undefined {
  if (!loaded.config[role].web.enabled) return undefined;
  const settings = resolveAuthSettings(loaded, role);
  if (!settings.enabled) {
    if (loaded.environment === 'production') {
      logger.warn(
        { role, key: `${role}.web.auth.enabled` },
        'authentication is off in production: anyone who reaches the HTTP port can create, cancel and resolve work (docs/security.md)',
      );
    }
    return undefined;
  }
  logger.info(
    {
      role,
      bearer_tokens:
        settings.publicKeyPem !== undefined ? 'static key' : settings.jwksUrl !== undefined ? 'jwks' : 'off',
      api_keys: settings.apiKeys.length,
      protect_operational_endpoints: settings.protectOperationalEndpoints,
    },
    'authentication on',
  );
  return new Authenticator(settings, logger);
}
