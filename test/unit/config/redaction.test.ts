import { describe, expect, it } from 'vitest';
import { redactConfig } from '../../../src/config/redactConfig.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { ConfigError, formatConfigProblem } from '../../../src/domain/errors.ts';
import { configProblems, configRoot } from './configTestKit.ts';

const DB_URL = 'postgres://tasker:TopSecret123@db.internal:5432/tasker_production?sslmode=require';
const MQ_URL = 'amqp://a:OtherSecret@mq.internal:5672/%2F';

function configWith(databaseUrl: string, rabbitUrl: string) {
  return configSchema.parse({ database: { url: databaseUrl }, rabbitmq: { url: rabbitUrl } });
}

describe('redactConfig', () => {
  it('hides the passwords of database.url and rabbitmq.url, keeping user, host, port and database', () => {
    const redacted = redactConfig(configWith(DB_URL, MQ_URL));
    expect(redacted.database.url).toBe(
      'postgres://tasker:***@db.internal:5432/tasker_production?sslmode=require',
    );
    expect(redacted.rabbitmq.url).toBe('amqp://a:***@mq.internal:5672/%2F');
    expect(JSON.stringify(redacted)).not.toContain('TopSecret123');
    expect(JSON.stringify(redacted)).not.toContain('OtherSecret');
  });

  it('changes nothing else, and does not touch the original', () => {
    const config = configWith(DB_URL, MQ_URL);
    const redacted = redactConfig(config);
    expect({
      ...redacted,
      database: { ...redacted.database, url: DB_URL },
      rabbitmq: { ...redacted.rabbitmq, url: MQ_URL },
    }).toEqual(config);
    expect(config.database.url).toBe(DB_URL);
    expect(config.rabbitmq.url).toBe(MQ_URL);
    expect(redacted).not.toBe(config);
  });

  it('leaves URLs without a password as they are', () => {
    const redacted = redactConfig(
      configWith('postgres://root@127.0.0.1:5432/tasker', 'amqp://mq.internal/%2F'),
    );
    expect(redacted.database.url).toBe('postgres://root@127.0.0.1:5432/tasker');
    expect(redacted.rabbitmq.url).toBe('amqp://mq.internal/%2F');
    expect(redactConfig(configWith('pglite:./.tasker/db', MQ_URL)).database.url).toBe('pglite:./.tasker/db');
  });

  it('redacts percent-encoded passwords and postgresql:// URLs', () => {
    const redacted = redactConfig(configWith('postgresql://app:p%40ss%3Aword@db/x', 'amqps://u:p%2Fw@mq/'));
    expect(redacted.database.url).toBe('postgresql://app:***@db/x');
    expect(redacted.rabbitmq.url).toBe('amqps://u:***@mq/');
  });

  it('redacts the URLs of a loaded configuration set by DATABASE_URL and RABBITMQ_URL', () => {
    const root = configRoot({ files: { 'environments/staging/.keep': '' } });
    const loaded = root.load({ TASKER_ENV: 'staging', DATABASE_URL: DB_URL, RABBITMQ_URL: MQ_URL });
    const redacted = redactConfig(loaded.config);
    expect(redacted.database.url).toBe(
      'postgres://tasker:***@db.internal:5432/tasker_production?sslmode=require',
    );
    expect(redacted.rabbitmq.url).toBe('amqp://a:***@mq.internal:5672/%2F');
  });
});

describe('configuration problems do not print passwords', () => {
  it('a problem elsewhere in a configuration whose URLs hold passwords never quotes them', () => {
    const root = configRoot({
      files: {
        'environments/staging/bad.toml': `[database]\nurl = "${DB_URL}"\nmax_connections = 0\n[rabbitmq]\nurl = "${MQ_URL}"\n`,
      },
    });
    const error = (() => {
      try {
        root.load({ TASKER_ENV: 'staging' });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toBe(
      'configuration has 1 problem:\n  environments/staging/bad.toml: database.max_connections: expected an integer 1..10000, found 0',
    );
  });

  it('a missing variable inside a URL names the variable, not the URL', () => {
    const root = configRoot({
      files: {
        'environments/staging/db.toml': '[database]\nurl = "postgres://app:TopSecret123@db/${DB_NAME}"\n',
      },
    });
    const text = root.formatted({ TASKER_ENV: 'staging' }).join('\n');
    expect(text).toBe(
      'environments/staging/db.toml: database.url: environment variable DB_NAME is not set (or is empty) and has no default: set it, or write ${DB_NAME:-default}',
    );
  });

  // Known defect (reported): a secret key with an invalid value is quoted in full in the problem
  // ("found \"mysql://u:TopSecret123@db/x\""), so ConfigError.message and `tasker config validate` print the
  // password. Remove `.fails` once validateConfig redacts secret values.
  it('an invalid database.url does not quote its password', () => {
    const root = configRoot({ files: { 'environments/staging/.keep': '' } });
    const problems = configProblems(() =>
      root.load({ TASKER_ENV: 'staging', DATABASE_URL: 'mysql://u:TopSecret123@db/x' }),
    );
    expect(problems.map(formatConfigProblem).join('\n')).not.toContain('TopSecret123');
  });

  // Same defect, worse: values over 60 characters are cut before any redaction could see the "@", so even a
  // caller that runs redactSecrets() over the message (as the CLI's error handler does) prints the password.
  it('a long invalid URL does not print a prefix of its password', () => {
    const root = configRoot({ files: { 'environments/staging/.keep': '' } });
    const problems = configProblems(() =>
      root.load({
        TASKER_ENV: 'staging',
        RABBITMQ_URL: 'http://service-account-user:VeryLongPasswordValue1234567890@mq.internal/',
      }),
    );
    expect(problems.map(formatConfigProblem).join('\n')).not.toContain('VeryLongPassword');
  });
});
