/**
 * docs/templates.md documents every key the template parser accepts and every value of its choices. The lists
 * come from the parser itself (the "keys allowed here" of an unknown-key problem, the "must be one of" of a bad
 * choice), so a key added to the parser without a line in the docs fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TemplateError } from '../../../src/domain/template/templateError.ts';
import { parseTaskTemplate } from '../../../src/domain/template/templateParser.ts';

const DOC = readFileSync(new URL('../../../docs/templates.md', import.meta.url), 'utf8');

const VALID = `name: t
namespace_name: ns
version: 1.0.0
steps:
  - name: a
    handler: { callable: H }
`;

/** The problems' hints and messages of parsing `text`, which must fail. */
function problemsOf(text: string): string[] {
  try {
    parseTaskTemplate(text, 'doc_check.yaml');
  } catch (error) {
    if (error instanceof TemplateError)
      return error.problems.map((p) => `${p.message} ${(p as { hint?: string }).hint ?? ''}`);
    throw error;
  }
  throw new Error(`expected a problem in:\n${text}`);
}

/** The keys the parser lists as allowed at the place of `bogus_key_for_docs`. */
function allowedKeys(text: string): string[] {
  const problem = problemsOf(text).find((p) => p.includes('keys allowed here: '));
  const list = /keys allowed here: ([a-z_, ]+)/.exec(problem ?? '')?.[1];
  if (list === undefined) throw new Error(`no allowed-keys list in ${problemsOf(text).join('\n')}`);
  return list.split(', ');
}

function choices(text: string): string[] {
  const problem = problemsOf(text).find((p) => p.includes('must be one of '));
  return (/must be one of ([a-z_, ]+);/.exec(problem ?? '')?.[1] ?? '').split(', ');
}

const PLACES: Record<string, string> = {
  'top level': `${VALID}bogus_key_for_docs: 1\n`,
  step: VALID.replace(
    '    handler: { callable: H }',
    '    handler: { callable: H }\n    bogus_key_for_docs: 1',
  ),
  handler: VALID.replace('{ callable: H }', '{ callable: H, bogus_key_for_docs: 1 }'),
  retry: VALID.replace(
    '    handler: { callable: H }',
    '    handler: { callable: H }\n    retry: { bogus_key_for_docs: 1 }',
  ),
  lifecycle: `${VALID}lifecycle: { bogus_key_for_docs: 1 }\n`,
  'environment step override': `${VALID}environments:\n  test:\n    steps:\n      - { name: a, bogus_key_for_docs: 1 }\n`,
};

describe('docs/templates.md', () => {
  it.each(Object.entries(PLACES))('documents every %s key', (_place, text) => {
    const keys = allowedKeys(text);
    expect(keys.length).toBeGreaterThan(0);
    const missing = keys.filter((key) => !DOC.includes(`\`${key}\``));
    expect(missing).toEqual([]);
  });

  it('documents every identity strategy and backoff strategy', () => {
    const values = [
      ...choices(`${VALID}identity_strategy: nope\n`),
      ...choices(
        VALID.replace(
          '    handler: { callable: H }',
          '    handler: { callable: H }\n    retry: { backoff: nope }',
        ),
      ),
    ];
    expect(values).toEqual(
      expect.arrayContaining(['strict', 'caller_provided', 'always_unique', 'exponential']),
    );
    expect(values.filter((value) => !DOC.includes(`\`${value}\``))).toEqual([]);
  });
});
