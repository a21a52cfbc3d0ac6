import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTemplates, templateSearchPaths } from '../../../src/domain/template/templateLoader.ts';
import { fixtureText, placeOf, problemsOf, TEMPLATE_FIXTURES, tempTree } from './templateTestKit.ts';

const VALID = join(TEMPLATE_FIXTURES, 'valid');

function template(name: string, extra = ''): string {
  return `name: ${name}\nnamespace_name: loader\nversion: 1.0.0\n${extra}steps:\n  - name: only_step\n    handler: {callable: Only}\n`;
}

describe('loadTemplates', () => {
  it('reads every .yml/.yaml file under a folder, nested folders included, in path order', () => {
    const { templates, files } = loadTemplates([VALID]);
    expect(files.map((file) => file.slice(VALID.length + 1))).toEqual([
      'errors/error_scenarios.yaml',
      'payments/process_refund.yaml',
      'shapes/diamond.yaml',
      'shapes/linear.yaml',
      'shapes/mixed_dag.yml',
      'shapes/order_fulfillment.yaml',
      'shapes/tree/hierarchical_tree.yaml',
    ]);
    expect(templates.map((t) => `${t.namespace}/${t.name}`)).toEqual([
      'test_errors/mixed_errors',
      'payments/process_refund',
      'diamond_workflow/diamond_pattern',
      'linear_workflow/mathematical_sequence',
      'mixed_dag_workflow/complex_dag',
      'ecommerce/order_fulfillment',
      'tree_workflow/hierarchical_tree',
    ]);
  });

  it('reads a file named directly, and passes the environment to the parser', () => {
    const file = join(VALID, 'shapes', 'order_fulfillment.yaml');
    const { templates, files } = loadTemplates([file], { environment: 'production' });
    expect(files).toEqual([file]);
    expect(templates[0]?.steps.map((s) => s.timeoutSeconds)).toEqual([120, 120, 120, 120]);
  });

  it('skips dot-files, dot-folders and other extensions; reads .YAML in any case', () => {
    const dir = tempTree({
      'a.yaml': template('a'),
      'B.YAML': template('b'),
      'notes.md': 'not yaml',
      '.hidden.yaml': 'broken: [',
      '.git/config.yaml': 'broken: [',
    });
    expect(loadTemplates([dir]).templates.map((t) => t.name)).toEqual(['b', 'a']);
  });

  it('reads a file reached through two search paths once', () => {
    const dir = tempTree({ 'payments/refund.yaml': template('refund') });
    const loaded = loadTemplates([dir, join(dir, 'payments'), join(dir, 'payments', 'refund.yaml')]);
    expect(loaded.files).toEqual([join(dir, 'payments', 'refund.yaml')]);
    expect(loaded.templates).toHaveLength(1);
  });

  it('survives a symlink loop', () => {
    const dir = tempTree({ 'nested/one.yaml': template('one') });
    symlinkSync(dir, join(dir, 'nested', 'loop'));
    expect(loadTemplates([dir]).templates.map((t) => t.name)).toEqual(['one']);
  });

  it('gathers the problems of every file into one TemplateError', () => {
    const dir = tempTree({
      'a/cycle.yaml': fixtureText('invalid/cycle.yaml'),
      'b/good.yaml': template('good'),
      'c/timeout.yaml': fixtureText('invalid/timeout.yaml'),
    });
    const problems = problemsOf(() => loadTemplates([dir]));
    expect(problems.map(placeOf)).toEqual([
      `${join(dir, 'a', 'cycle.yaml')}:9:27 steps[1].dependencies[1]`,
      `${join(dir, 'c', 'timeout.yaml')}:7:22 steps[0].timeout_seconds`,
      `${join(dir, 'c', 'timeout.yaml')}:10:22 steps[1].timeout_seconds`,
    ]);
  });

  it('rejects two files defining the same namespace, name and version, naming both', () => {
    const dir = tempTree({
      'first/refund.yaml': template('refund'),
      'second/refund_copy.yaml': template('refund', 'description: a copy\n'),
      'third/refund_v2.yaml': template('refund').replace('1.0.0', '2.0.0'),
    });
    const problems = problemsOf(() => loadTemplates([dir]));
    expect(problems).toEqual([
      {
        file: join(dir, 'second', 'refund_copy.yaml'),
        path: '',
        line: null,
        column: null,
        message: `template loader/refund version 1.0.0 is also defined in ${join(dir, 'first', 'refund.yaml')}; a namespace, name and version identify one template`,
        hint: 'give one of them a new version (or name), or remove one definition',
      },
    ]);
  });

  it('reports a search path that does not exist, and a glob, with the folder to use instead', () => {
    const dir = tempTree({ 'one.yaml': template('one') });
    const missing = join(dir, 'missing');
    const problems = problemsOf(() => loadTemplates([missing, 'config/tasks/**/*.{yml,yaml}', dir]));
    expect(problems).toEqual([
      {
        file: missing,
        path: '',
        line: null,
        column: null,
        message: 'template search path does not exist',
        hint: 'create it, or fix TASKER_TEMPLATE_PATH or the configured template search paths',
      },
      {
        file: 'config/tasks/**/*.{yml,yaml}',
        path: '',
        line: null,
        column: null,
        message: 'template search paths are files or folders, not glob patterns',
        hint: 'use the folder config/tasks: every .yml and .yaml file under it is read, subfolders included',
      },
    ]);
  });

  it('returns nothing for an empty folder', () => {
    const dir = tempTree({});
    mkdirSync(join(dir, 'empty'));
    expect(loadTemplates([dir])).toEqual({ templates: [], files: [] });
  });
});

describe('templateSearchPaths', () => {
  it('TASKER_TEMPLATE_PATH wins over the configured paths, split like PATH', () => {
    expect(templateSearchPaths({ TASKER_TEMPLATE_PATH: '/srv/a: /srv/b ::' }, ['config/tasks'])).toEqual([
      '/srv/a',
      '/srv/b',
    ]);
  });

  it('falls back to the configured paths when the variable is unset or names nothing', () => {
    expect(templateSearchPaths({}, ['config/tasks', 'more'])).toEqual(['config/tasks', 'more']);
    expect(templateSearchPaths({ TASKER_TEMPLATE_PATH: ' : ' }, ['config/tasks'])).toEqual(['config/tasks']);
    expect(templateSearchPaths({})).toEqual([]);
  });

  it('reads process.env by default', () => {
    const before = process.env['TASKER_TEMPLATE_PATH'];
    process.env['TASKER_TEMPLATE_PATH'] = '/from/env';
    try {
      expect(templateSearchPaths(undefined, ['configured'])).toEqual(['/from/env']);
    } finally {
      if (before === undefined) delete process.env['TASKER_TEMPLATE_PATH'];
      else process.env['TASKER_TEMPLATE_PATH'] = before;
    }
  });

  it('feeds loadTemplates: the variable decides which folder is read', () => {
    const envDir = tempTree({ 'from_env.yaml': template('from_env') });
    const configuredDir = tempTree({ 'configured.yaml': template('configured') });
    const paths = templateSearchPaths({ TASKER_TEMPLATE_PATH: envDir }, [configuredDir]);
    expect(loadTemplates(paths).templates.map((t) => t.name)).toEqual(['from_env']);
  });
});
