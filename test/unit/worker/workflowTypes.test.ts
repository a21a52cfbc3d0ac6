/**
 * Workflow typing, checked by the compiler: a typed workflow compiles, reading a step that is not a parent
 * and using a parent's result with the wrong type do not. The fixtures that must fail live in
 * test/fixtures/workflows/compileErrors/, which tsconfig.json, eslint and knip leave out.
 */
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = (name: string): string =>
  fileURLToPath(new URL(`../../fixtures/workflows/${name}`, import.meta.url));

function compilerOptions(): ts.CompilerOptions {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    `${ROOT}tsconfig.json`,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      },
    },
  );
  if (parsed === undefined) throw new Error('tsconfig.json cannot be read');
  return { ...parsed.options, noEmit: true };
}

const FIXTURES = ['diamondWorkflow.ts', 'compileErrors/notAParent.ts', 'compileErrors/wrongResultType.ts'];
let program: ts.Program | undefined;

/** Every diagnostic of one fixture compiled with the repository's options, as `file:line: message`. */
function diagnostics(name: string): string[] {
  // One program for every fixture: parsing the libraries and zod's declarations once takes most of the time.
  program ??= ts.createProgram({ rootNames: FIXTURES.map(fixture), options: compilerOptions() });
  const source = program.getSourceFile(fixture(name));
  if (source === undefined) throw new Error(`${name} is not in the program`);
  return ts.getPreEmitDiagnostics(program, source).map((diagnostic) => {
    const line =
      diagnostic.file !== undefined && diagnostic.start !== undefined
        ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line + 1
        : 0;
    const where =
      diagnostic.file === undefined ? '' : `${diagnostic.file.fileName.slice(ROOT.length)}:${line}: `;
    return `${where}${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
  });
}

describe('workflow typing (TypeScript compiler)', { timeout: 120_000 }, () => {
  it('a typed diamond workflow compiles', () => {
    expect(diagnostics('diamondWorkflow.ts')).toEqual([]);
  });

  it('ctx.parent(step) of a step that is not a parent does not compile', () => {
    const messages = diagnostics('compileErrors/notAParent.ts');
    expect(messages[0]).toBe(
      'test/fixtures/workflows/compileErrors/notAParent.ts:9: ' +
        `Argument of type 'WorkflowStep<"enrich", { score: number; }>' is not assignable to parameter of type 'WorkflowStep<"fetch_order", { orderId: string; }>'.\n` +
        `  Type '"enrich"' is not assignable to type '"fetch_order"'.`,
    );
  });

  it('using a parent result with the wrong type does not compile', () => {
    expect(diagnostics('compileErrors/wrongResultType.ts')).toEqual([
      "test/fixtures/workflows/compileErrors/wrongResultType.ts:9: Type 'number' is not assignable to type 'string'.",
    ]);
  });
});
