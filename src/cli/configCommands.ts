import type { Command } from 'commander';
import { stringify } from 'smol-toml';
import { ConfigError, formatConfigProblem } from '../domain/errors.ts';
import { resolveAuthSettings } from '../config/authSettings.ts';
import type { AuthSettings } from '../config/authSettings.ts';
import { loadConfig } from '../config/loadConfig.ts';
import type { LoadedConfig } from '../config/loadConfig.ts';
import { redactConfig } from '../config/redactConfig.ts';
import { productionDefaultProblems, sourceOf, unsupportedSettingProblems } from '../config/validateConfig.ts';
import { redactSecrets } from '../domain/secretRedaction.ts';

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

function leaves(value: unknown, prefix: string, result: [string, unknown][]): [string, unknown][] {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [key, child] of Object.entries(value))
      leaves(child, prefix === '' ? key : `${prefix}.${key}`, result);
  } else {
    result.push([prefix, value]);
  }
  return result;
}

export function registerConfigCommands(program: Command): void {
  const config = program
    .command('config')
    .description('check and show the configuration (config/tasker/, TASKER_ENV, environment variables)');

  config
    .command('validate')
    .description('load and validate the configuration; print every problem, exit 1 if there are any')
    .action(() => {
      let loaded: LoadedConfig;
      const auth: Partial<Record<'orchestration' | 'worker', AuthSettings>> = {};
      try {
        loaded = loadConfig();
        // What the services check at start: key files readable, key variables set, a key source when on.
        const problems = [...unsupportedSettingProblems(loaded), ...productionDefaultProblems(loaded)];
        for (const role of ['orchestration', 'worker'] as const) {
          if (!loaded.config[role].web.enabled) continue;
          try {
            auth[role] = resolveAuthSettings(loaded, role);
          } catch (error) {
            if (!(error instanceof ConfigError)) throw error;
            problems.push(...error.problems);
          }
        }
        if (problems.length > 0) throw new ConfigError(problems);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        out(`✗ Configuration has ${error.problems.length} problem${error.problems.length === 1 ? '' : 's'}:`);
        for (const problem of error.problems) out(`  ✗ ${redactSecrets(formatConfigProblem(problem))}`);
        process.exitCode = 1;
        return;
      }
      const { config: c } = loaded;
      out('✓ Configuration loaded successfully');
      out(`✓ Environment: ${loaded.environment}`);
      out(`✓ Deployment mode: ${c.orchestration.deployment_mode}`);
      out(`✓ Database pool: ${c.database.max_connections} connections`);
      out(`✓ Circuit breakers: ${Object.keys(c.circuit_breakers).length} configurations`);
      out(
        `✓ Worker: ${c.worker.deployment_mode}, namespaces ${c.worker.namespaces.length > 0 ? c.worker.namespaces.join(', ') : '(none set)'}`,
      );
      out(`✓ Messaging backend: ${c.messaging.backend}`);
      for (const role of ['orchestration', 'worker'] as const) {
        const settings = auth[role];
        if (settings === undefined) continue;
        if (!settings.enabled) {
          const mark = loaded.environment === 'production' ? '!' : '✓';
          out(
            `${mark} Auth (${role}): off${mark === '!' ? ' in production: the API is open to anyone who reaches it' : ''}`,
          );
          continue;
        }
        const tokens =
          settings.publicKeyPem !== undefined
            ? 'bearer tokens (static key)'
            : settings.jwksUrl !== undefined
              ? 'bearer tokens (JWKS)'
              : 'no bearer tokens';
        out(`✓ Auth (${role}): on, ${tokens}, ${settings.apiKeys.length} API key(s)`);
      }
      out(`✓ Files: ${loaded.files.length} read from ${loaded.folder ?? 'TASKER_CONFIG_PATH'}`);
    });

  config
    .command('show')
    .description('print the merged configuration, secrets redacted')
    .option('--json', 'as JSON instead of TOML')
    .option('--sources', 'one key per line with the file or variable that set it')
    .action((options: { json?: boolean; sources?: boolean }) => {
      const loaded = loadConfig();
      const redacted = redactConfig(loaded.config);
      if (options.sources === true) {
        for (const [path, value] of leaves(redacted, '', [])) {
          out(`${path} = ${JSON.stringify(value)}  # ${sourceOf(loaded.provenance, path.split('.'))}`);
        }
        return;
      }
      if (options.json === true) {
        out(JSON.stringify(redacted, null, 2));
        return;
      }
      out(`# Tasker configuration, environment "${loaded.environment}"; secrets redacted`);
      out(`# files: ${loaded.files.join(', ') || '(none)'}`);
      out(stringify(redacted));
    });
}
