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
});
