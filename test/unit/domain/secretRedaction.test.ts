import { describe, expect, it } from 'vitest';
import { redactSecrets, redactUrl } from '../../../src/domain/secretRedaction.ts';

describe('secret redaction', () => {
  it('hides the password of a URL and keeps the rest', () => {
    expect(redactUrl('postgres://tasker:p%40ss:word@db:5432/prod?sslmode=require')).toBe(
      'postgres://tasker:***@db:5432/prod?sslmode=require',
    );
    expect(redactUrl('amqp://guest:guest@rabbitmq:5672/%2F')).toBe('amqp://guest:***@rabbitmq:5672/%2F');
  });

  it('leaves URLs without a password alone', () => {
    expect(redactUrl('postgres://root@127.0.0.1:5432/tasker')).toBe('postgres://root@127.0.0.1:5432/tasker');
    expect(redactUrl('pglite:./.tasker/db')).toBe('pglite:./.tasker/db');
  });

  it('redacts every URL inside free text', () => {
    const text =
      'failed postgres://a:one@h1/db then amqp://b:two@h2/ and {"url":"postgresql://c:three@h3:5432/x"}';
    const redacted = redactSecrets(text);
    for (const secret of ['one', 'two', 'three']) expect(redacted).not.toContain(`:${secret}@`);
    expect(redacted).toContain('postgres://a:***@h1/db');
    expect(redacted).toContain('postgresql://c:***@h3:5432/x');
  });

  it('hides passwords with an unencoded @, and credentials given as query parameters', () => {
    expect(redactUrl('postgres://root:P@W@db:5432/prod')).toBe('postgres://root:***@db:5432/prod');
    expect(redactUrl('postgres://root@db/prod?password=hunter2&sslmode=require')).toBe(
      'postgres://root@db/prod?password=***&sslmode=require',
    );
    expect(redactUrl('postgres://db/prod?sslmode=require&PASSWORD=hunter2')).toBe(
      'postgres://db/prod?sslmode=require&PASSWORD=***',
    );
    expect(redactUrl('postgres://u:a@b@db/x?sslpassword=k3y')).toBe('postgres://u:***@db/x?sslpassword=***');
    const text = 'cannot reach postgres://root:P@W@db/x?password=hunter2 (and amqp://g:s3@c@r/%2F)';
    const redacted = redactSecrets(text);
    for (const secret of ['P@W', 'hunter2', 's3@c']) expect(redacted).not.toContain(secret);
    expect(redacted).toBe('cannot reach postgres://root:***@db/x?password=*** (and amqp://g:***@r/%2F)');
  });
});
