import { generateKeyPairSync, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { resolveAuthSettings } from '../config/authSettings.ts';
import { loadConfig } from '../config/loadConfig.ts';
import type { LoadedConfig } from '../config/loadConfig.ts';
import { JWT_ALGORITHMS } from '../config/schema.ts';
import { grantProblem, PERMISSIONS } from '../domain/auth/permissions.ts';
import { ValidationError } from '../domain/errors.ts';
import { out } from './clientOutput.ts';

function invalid(message: string): ValidationError {
  return new ValidationError('TASKER_INVALID_ARGUMENT', message);
}

function readKeyFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw invalid(
      `cannot read the ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

function withAuthOff(loaded: LoadedConfig, role: 'orchestration' | 'worker'): LoadedConfig {
  const config = structuredClone(loaded.config);
  config[role].web.auth.enabled = false;
  return { ...loaded, config };
}

// jose, the verifier and pino load only when an auth command runs: every other command starts without them.
const jose = () => import('jose');

/**
 * `tasker auth`: keys and tokens for development and operations. Tasker verifies identities but does not
 * manage them; in production tokens come from your identity provider (docs/security.md).
 */
export function registerAuthCommands(program: Command): void {
  const auth = program
    .command('auth')
    .description('keys, tokens and permissions of the HTTP API (docs/security.md)');

  auth
    .command('generate-keys')
    .description(
      'an RSA key pair (PEM) for signing tokens: private.pem stays with the issuer, public.pem goes to the services',
    )
    .option('--out <folder>', 'write private.pem (mode 0600) and public.pem there; default: print both')
    .option('--bits <n>', 'RSA modulus length', '2048')
    .action(async (flags: { out?: string; bits: string }) => {
      const bits = Number(flags.bits);
      if (!Number.isInteger(bits) || bits < 2048 || bits > 8192)
        throw invalid(`--bits must be an integer 2048..8192, found ${JSON.stringify(flags.bits)}`);
      const { privateKey, publicKey } = generateKeyPairSync('rsa', {
        modulusLength: bits,
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        publicKeyEncoding: { type: 'spki', format: 'pem' },
      });
      const { calculateJwkThumbprint, exportJWK } = await jose();
      const kid = await calculateJwkThumbprint(await exportJWK(createPublicKey(publicKey)));
      if (flags.out === undefined) {
        out(privateKey.trimEnd());
        out(publicKey.trimEnd());
        return;
      }
      mkdirSync(flags.out, { recursive: true });
      writeFileSync(join(flags.out, 'private.pem'), privateKey, { mode: 0o600 });
      writeFileSync(join(flags.out, 'public.pem'), publicKey);
      out(`✓ wrote ${join(flags.out, 'private.pem')} (keep it secret) and ${join(flags.out, 'public.pem')}`);
      out(`  key id (JWK thumbprint, for --kid and a JWKS): ${kid}`);
      out(
        `  services: jwt_public_key_path = "${join(flags.out, 'public.pem')}" (or TASKER_JWT_PUBLIC_KEY_PATH)`,
      );
    });

  auth
    .command('generate-token')
    .description(
      'sign a JWT with a private key (development, tests and service accounts); prints only the token',
    )
    .requiredOption(
      '--permissions <list>',
      'comma-separated permissions, e.g. tasks:create,tasks:read or tasks:*',
    )
    .requiredOption('--private-key <file>', 'PEM private key (from generate-keys)')
    .option('--expires-in <duration>', 'lifetime, e.g. 30m, 1h, 7d', '1h')
    .option('--subject <sub>', 'who the token is for', 'tasker-cli')
    .option('--issuer <iss>', 'iss claim (must match jwt_issuer when that is set)')
    .option('--audience <aud>', 'aud claim (must match jwt_audience when that is set)')
    .option('--kid <id>', 'key id header (needed with a JWKS holding several keys)')
    .option('--algorithm <alg>', `one of ${JWT_ALGORITHMS.join(', ')}`, 'RS256')
    .option('--claim <name>', 'claim that carries the permissions', 'permissions')
    .action(
      async (flags: {
        permissions: string;
        privateKey: string;
        expiresIn: string;
        subject: string;
        issuer?: string;
        audience?: string;
        kid?: string;
        algorithm: string;
        claim: string;
      }) => {
        const permissions = flags.permissions
          .split(',')
          .map((p) => p.trim())
          .filter((p) => p !== '');
        for (const permission of permissions) {
          const problem = grantProblem(permission);
          if (problem !== undefined) throw invalid(`--permissions: ${problem}`);
        }
        if (!(JWT_ALGORITHMS as readonly string[]).includes(flags.algorithm))
          throw invalid(`--algorithm must be one of ${JWT_ALGORITHMS.join(', ')}`);
        if (
          !/^\d+\s*(s|sec|secs|m|min|mins|h|hr|hrs|hour|hours|d|day|days|w|week|weeks)$/.test(flags.expiresIn)
        )
          throw invalid(
            `--expires-in must be a duration such as 30m, 1h or 7d, found ${JSON.stringify(flags.expiresIn)}`,
          );
        let key;
        try {
          key = createPrivateKey(readKeyFile(flags.privateKey, 'private key'));
        } catch (error) {
          if (error instanceof ValidationError) throw error;
          throw invalid(`${flags.privateKey} is not a PEM private key: ${(error as Error).message}`);
        }
        const { SignJWT } = await jose();
        let jwt = new SignJWT({ [flags.claim]: permissions })
          .setProtectedHeader({
            alg: flags.algorithm,
            typ: 'JWT',
            ...(flags.kid !== undefined && { kid: flags.kid }),
          })
          .setSubject(flags.subject)
          .setIssuedAt()
          .setNotBefore('0s')
          .setExpirationTime(flags.expiresIn);
        if (flags.issuer !== undefined) jwt = jwt.setIssuer(flags.issuer);
        if (flags.audience !== undefined) jwt = jwt.setAudience(flags.audience);
        out(await jwt.sign(key));
      },
    );

  auth
    .command('show-permissions')
    .description('the permissions a token or API key can grant')
    .action(() => {
      out(
        `${PERMISSIONS.length} permissions (resource:action); resource wildcards such as tasks:* grant every action of a resource; "*" is refused:`,
      );
      let resource = '';
      for (const permission of PERMISSIONS) {
        const [prefix] = permission.split(':');
        if (prefix !== resource) {
          resource = prefix ?? '';
          out(`  ${resource}:*`);
        }
        out(`    ${permission}`);
      }
      out(
        'Each REST operation names the permission it needs in the OpenAPI document (/api-docs) and docs/api.md.',
      );
    });

  auth
    .command('validate-token <token>')
    .description(
      'verify a JWT as a service would: signature, algorithm, expiry, issuer, audience, permissions',
    )
    .option(
      '--role <role>',
      'whose [<role>.web.auth] settings to use: orchestration or worker',
      'orchestration',
    )
    .option('--public-key <file>', 'verify with this PEM public key instead of the configured key source')
    .action(async (token: string, flags: { role: string; publicKey?: string }) => {
      if (flags.role !== 'orchestration' && flags.role !== 'worker')
        throw invalid(`--role must be orchestration or worker, found ${JSON.stringify(flags.role)}`);
      const loaded = loadConfig();
      const settings =
        flags.publicKey === undefined
          ? resolveAuthSettings(loaded, flags.role, { evenIfDisabled: true })
          : {
              // The claim checks of the configuration, without reading (or requiring) its key source.
              ...resolveAuthSettings(withAuthOff(loaded, flags.role), flags.role),
              publicKeyPem: readKeyFile(flags.publicKey, 'public key'),
              jwksUrl: undefined,
            };
      const [{ Authenticator }, { ApiError }, { silentLogger }, { decodeJwt }] = await Promise.all([
        import('../api/auth/authenticator.ts'),
        import('../api/rest/apiError.ts'),
        import('../observability/logger.ts'),
        jose(),
      ]);
      const authenticator = new Authenticator({ ...settings, apiKeys: [] }, silentLogger);
      try {
        const principal = await authenticator.authenticate(`Bearer ${token.trim()}`, undefined);
        const claims = decodeJwt(token.trim());
        out(`✓ valid for ${flags.role}: ${principal.subject}`);
        if (typeof claims.exp === 'number') out(`  expires: ${new Date(claims.exp * 1000).toISOString()}`);
        const granted = principal.permissions.list();
        out(`  permissions: ${granted.length === 0 ? '(none)' : granted.join(', ')}`);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        throw new ValidationError(
          'TASKER_INVALID_ARGUMENT',
          `the token is not valid for ${flags.role}: ${error.message}`,
        );
      }
    });
}
