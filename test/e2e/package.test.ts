import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Tasker as a user's dependency: `npm pack` (whose prepack builds dist/), then a fresh project outside the
 * repository installs the tarball with plain `npm install` and uses it by name. Real processes and files.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGE = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { name: string }).name;
/** Packages an app that only creates tasks (or only defines handlers) must not load. */
const SERVER_PACKAGES = /^(pg|pg-[^/]*|fastify|@fastify\/[^/]+|@grpc\/[^/]+|pino|@electric-sql\/[^/]+)$/;

/** The version of a package installed in this repository, so the project gets the same one. */
function devVersion(name: string): string {
  return (
    JSON.parse(readFileSync(join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
  ).version;
}

interface RunResult {
  code: number | string;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The environment of a user's shell: none of this repository's test settings leak into the project. */
function userEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^(TASKER_|DATABASE_URL|LOG_LEVEL$|RUST_LOG$|NODE_OPTIONS$|TRACE_FILE$)/.test(key)) delete env[key];
  }
  return env;
}

/** Runs a command to its end under a deadline; `expectOk` fails with the command's whole output. */
function run(
  command: string,
  args: string[],
  options: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: options.env ?? userEnv(),
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : (error.code ?? (error.killed ? `killed (timeout)` : 1));
        resolve({ code, stdout, stderr, ms: Math.round(performance.now() - started) });
      },
    );
  });
}

function expectOk(result: RunResult, what: string): void {
  if (result.code !== 0) {
    throw new Error(
      `${what} exited ${result.code} after ${result.ms} ms\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
    );
  }
}

const HANDLERS_TS = `import { appendFileSync } from 'node:fs';
import { defineHandler, PermanentError } from '${PACKAGE}';
import type { StepContext } from '${PACKAGE}';

export const greet = defineHandler('Greeting.Greet', (ctx: StepContext<{ name?: string }>) => {
  if (typeof ctx.input.name !== 'string') throw new PermanentError('no name given', { code: 'no_name' });
  return { greeting: \`Hello, \${ctx.input.name}\` };
});

export const shout = defineHandler('Greeting.Shout', (ctx) => {
  const { greeting } = ctx.dependency<{ greeting: string }>('greet');
  appendFileSync('handler-runs.txt', \`\${ctx.stepName}: \${greeting.toUpperCase()}\\n\`);
  return { shouted: greeting.toUpperCase() };
});
`;

const TEMPLATE_YAML = `name: hello
namespace_name: greeting
version: 1.0.0
steps:
  - name: greet
    handler: { callable: Greeting.Greet }
  - name: shout
    handler: { callable: Greeting.Shout }
    dependencies: [greet]
`;

const CHECK_CJS = `const tasker = require('${PACKAGE}');
const client = require('${PACKAGE}/client');
const error = new tasker.PermanentError('declined', { code: 'card_declined' });
console.log(JSON.stringify({
  main: Object.keys(tasker).sort(),
  client: Object.keys(client).sort(),
  defineHandler: tasker.defineHandler('A.B', () => 1).name,
  isPermanentError: tasker.isPermanentError(error),
  taskerClient: typeof new client.TaskerClient('http://127.0.0.1:9') === 'object',
}));
`;

// A workflow in TypeScript, typed along its edges; and the same with a step reading a result it does not depend on.
const WORKFLOW_TS = `import { z } from 'zod';
import { workflow } from '${PACKAGE}';
import type { TaskerClient } from '${PACKAGE}/client';

export const orders = workflow({
  namespace: 'shop',
  name: 'process_order',
  version: '1.0.0',
  input: z.object({ orderId: z.string(), total: z.number() }),
  identity: 'strict',
});
const validate = orders.step('validate', { run: (ctx) => ({ cents: Math.round(ctx.input.total * 100) }) });
const reserve = orders.step('reserve', { parents: [validate], run: () => ({ reservation: 'r-1' }) });
const charge = orders.step('charge', {
  parents: [validate, reserve],
  retry: { maxAttempts: 3, backoff: 'exponential' },
  timeoutSeconds: 30,
  run: (ctx) => {
    const cents: number = ctx.parent(validate).cents;
    const reservation: string = ctx.parent(reserve).reservation;
    return { charged: cents, reservation, order: ctx.input.orderId };
  },
});
export const processOrder = orders.returns(charge);

// A caller's side: the input typed by the schema, the output by returns().
export async function placeOrder(client: TaskerClient, orderId: string): Promise<number> {
  const output = await client.run(processOrder, { orderId, total: 12.5 });
  const reservation: string = output.reservation;
  return output.charged + reservation.length;
}
`;
const WRONG_PARENT_TS = WORKFLOW_TS.replace(
  "orders.step('charge', {\n  parents: [validate, reserve],",
  "orders.step('charge', {\n  parents: [validate],",
);
/** The project's own compiler (npx's -p would be read as --package). */
const TSC = 'node_modules/typescript/bin/tsc';
const tsconfig = (file: string): string =>
  JSON.stringify({
    compilerOptions: {
      strict: true,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      noEmit: true,
    },
    files: [file],
  });

// A user's test of a workflow with the package's test helpers: a fresh in-memory database, the task run to its end.
const TESTING_MJS = `import { z } from 'zod';
import { workflow } from '${PACKAGE}';
import { createTestTasker, runStep } from '${PACKAGE}/testing';

const flow = workflow({ namespace: 'shop', name: 'quote', version: '1.0.0', input: z.object({ items: z.number() }) });
const count = flow.step('count', { run: (ctx) => ({ items: ctx.input.items }) });
const quote = flow.step('quote', { parents: [count], run: (ctx) => ({ cents: ctx.parent(count).items * 250 }) });
const quoteFlow = flow.returns(quote);

const env = await createTestTasker({ workflows: [quoteFlow] });
try {
  const output = await env.run(quoteFlow, { items: 4 });
  const alone = await runStep(quoteFlow, quote, { input: { items: 1 }, results: { count: { items: 2 } } });
  console.log(JSON.stringify({ output, alone }));
} finally {
  await env.stop();
}
`;

// Logs the URL of every module the process resolves, to the file named by the registration's data.
const TRACE_HOOKS_MJS = `import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(file, result.url + '\\n');
  return result;
}
`;
const TRACE_MJS = `import { register } from 'node:module';
register('./trace-hooks.mjs', import.meta.url, { data: { file: process.env.TRACE_FILE } });
`;

describe(`the ${PACKAGE} package installed in a fresh project`, () => {
  let root = '';
  let project = '';
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tasker-package-'));
    const packed = await run('npm', ['pack', '--json', '--pack-destination', root], {
      cwd: REPO,
      timeoutMs: 120_000,
    });
    expectOk(packed, 'npm pack (prepack runs npm run build)');
    timings['npm pack'] = packed.ms;
    // npm prints prepack's output before the JSON; the JSON array is the last thing on stdout.
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.lastIndexOf('\n[') + 1)) as [
      { filename: string; files: { path: string }[] },
    ];
    const shipped = info.files.map((f) => f.path);
    for (const needed of [
      'bin/tasker.js',
      'dist/cli/main.js',
      'dist/index.d.ts',
      'dist/client.d.ts',
      'dist/testing.d.ts',
      'src/db/sql/claim_steps.sql',
      'migrations/0001_schemas_and_types.sql',
      'config/tasker/base/worker.toml',
      'examples/handlers/index.ts',
    ]) {
      expect(shipped, `the tarball ships ${needed}`).toContain(needed);
    }
    // The checkout's sources are not shipped (bin/tasker.js runs them when src/cli/ is present).
    expect(shipped.filter((path) => path.startsWith('src/cli/'))).toEqual([]);

    project = join(root, 'app');
    mkdirSync(join(project, 'templates'), { recursive: true });
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'my-app', private: true, type: 'module' }, null, 2),
    );
    const installed = await run(
      'npm',
      ['install', join(root, info.filename), '--prefer-offline', '--no-audit', '--no-fund'],
      { cwd: project, timeoutMs: 120_000 },
    );
    expectOk(installed, 'npm install <tarball>');
    timings['npm install'] = installed.ms;
    // What a TypeScript project adds for typed workflows: the compiler and zod, at the versions this repo uses.
    const tooling = await run(
      'npm',
      [
        'install',
        '--save-dev',
        `typescript@${devVersion('typescript')}`,
        `zod@${devVersion('zod')}`,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
      ],
      { cwd: project, timeoutMs: 120_000 },
    );
    expectOk(tooling, 'npm install typescript zod');
    timings['npm install typescript zod'] = tooling.ms;
    writeFileSync(join(project, 'workflow.ts'), WORKFLOW_TS);
    writeFileSync(join(project, 'wrong-parent.ts'), WRONG_PARENT_TS);
    writeFileSync(join(project, 'tsconfig.json'), tsconfig('workflow.ts'));
    writeFileSync(join(project, 'tsconfig.wrong.json'), tsconfig('wrong-parent.ts'));
    writeFileSync(join(project, 'handlers.ts'), HANDLERS_TS);
    writeFileSync(join(project, 'templates', 'greeting.yaml'), TEMPLATE_YAML);
    writeFileSync(join(project, 'check.cjs'), CHECK_CJS);
    writeFileSync(join(project, 'testing.mjs'), TESTING_MJS);
    writeFileSync(join(project, 'trace-hooks.mjs'), TRACE_HOOKS_MJS);
    writeFileSync(join(project, 'trace.mjs'), TRACE_MJS);
  }, 240_000);

  afterAll(() => {
    console.log(`package test timings (ms): ${JSON.stringify(timings)}`);
    if (root !== '') rmSync(root, { recursive: true, force: true });
  });

  it("the bin runs the project's TypeScript handlers to completion on an embedded database", async () => {
    const dev = await run(
      'npx',
      [
        '--no',
        'tasker',
        'dev',
        '--once',
        '--port',
        '0',
        '--handlers',
        './handlers.ts',
        '--templates',
        './templates',
        '--task',
        'greeting/hello@1.0.0',
        '--context',
        '{"name": "Ada"}',
      ],
      { cwd: project, timeoutMs: 90_000 },
    );
    timings['tasker dev --once'] = dev.ms;
    expectOk(dev, 'npx tasker dev --once');
    expect(dev.stdout).toContain('embedded PGlite');
    expect(dev.stdout).toContain('✓ Worker serving greeting: 1 templates, 2 handlers');
    expect(dev.stdout).toMatch(/✓ shout +complete → \{"shouted":"HELLO, ADA"\}/);
    expect(dev.stdout).toMatch(/✓ task [0-9a-f-]{36} complete in \d+ ms/);
    // The handlers ran in the project (their cwd), and the embedded database lives there too.
    expect(readFileSync(join(project, 'handler-runs.txt'), 'utf8')).toBe('shout: HELLO, ADA\n');
    expect(readFileSync(join(project, '.tasker', 'dev', 'PG_VERSION'), 'utf8').trim()).toMatch(/^\d+$/);
  }, 100_000);

  it('a typed workflow compiles, and reading a result the step does not depend on is a compile error', async () => {
    expect(WRONG_PARENT_TS).not.toBe(WORKFLOW_TS);
    const good = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], {
      cwd: project,
      timeoutMs: 90_000,
    });
    timings['tsc workflow.ts'] = good.ms;
    expectOk(good, 'tsc -p tsconfig.json');
    const wrong = await run(process.execPath, [TSC, '-p', 'tsconfig.wrong.json'], {
      cwd: project,
      timeoutMs: 90_000,
    });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout).toMatch(
      /wrong-parent\.ts\(\d+,\d+\): error TS2345: Argument of type 'WorkflowStep<"reserve"/,
    );
  }, 200_000);

  it('a CommonJS file require()s the package and its client entry', async () => {
    const check = await run(process.execPath, ['check.cjs'], { cwd: project, timeoutMs: 30_000 });
    expectOk(check, 'node check.cjs');
    expect(JSON.parse(check.stdout)).toEqual({
      main: expect.arrayContaining([
        'defineHandler',
        'StepHandler',
        'PermanentError',
        'RetryableError',
        'isPermanentError',
        'HandlerRegistry',
        'TaskerError',
        'isTaskerError',
      ]) as unknown,
      client: expect.arrayContaining(['TaskerClient', 'TaskerError', 'isTaskerError']) as unknown,
      defineHandler: 'A.B',
      isPermanentError: true,
      taskerClient: true,
    });
  });

  it("the testing entry runs the project's workflow to its output on a fresh embedded database", async () => {
    const tested = await run(process.execPath, ['testing.mjs'], { cwd: project, timeoutMs: 60_000 });
    timings['testing.mjs'] = tested.ms;
    expectOk(tested, 'node testing.mjs');
    expect(JSON.parse(tested.stdout.trim().split('\n').at(-1) ?? '')).toEqual({
      output: { cents: 1000 },
      alone: { cents: 500 },
    });
  }, 70_000);

  it('the embed entry resolves and exports startTasker', async () => {
    const loaded = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const embed = await import('${PACKAGE}/embed'); console.log(typeof embed.startTasker);`,
      ],
      { cwd: project, timeoutMs: 30_000 },
    );
    expectOk(loaded, `node -e "import('${PACKAGE}/embed')"`);
    expect(loaded.stdout.trim()).toBe('function');
  });

  it.each([
    ['client', `${PACKAGE}/client`, 'dist/client.js'],
    ['main', PACKAGE, 'dist/index.js'],
  ])('the %s entry loads no pg, fastify, @grpc, pino or PGlite', async (_label, specifier, entryFile) => {
    const traceFile = join(project, `modules-${_label}.txt`);
    const traced = await run(
      process.execPath,
      ['--import', './trace.mjs', '--input-type=module', '-e', `await import(${JSON.stringify(specifier)});`],
      { cwd: project, timeoutMs: 30_000, env: { ...userEnv(), TRACE_FILE: traceFile } },
    );
    expectOk(traced, `node --import ./trace.mjs -e "import('${specifier}')"`);
    const urls = readFileSync(traceFile, 'utf8').trim().split('\n');
    // The trace saw the entry itself: an empty or broken trace cannot pass.
    expect(urls).toContain(`file://${join(project, 'node_modules', PACKAGE, entryFile)}`);
    const packages = new Set(
      urls.flatMap((url) => {
        const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
        return match?.[1] === undefined ? [] : [match[1]];
      }),
    );
    expect([...packages].filter((name) => SERVER_PACKAGES.test(name))).toEqual([]);
  });
});
