import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ServerAnswerError, TaskerClient } from '../client/taskerClient.ts';
import type {
  ClientAuth,
  StepActionRequest,
  StepView,
  TaskRequest,
  TaskSummary,
} from '../client/taskerClient.ts';
import { ValidationError } from '../domain/errors.ts';
import { formatWarning, out, printJson, printTask, table } from './clientOutput.ts';
import { formatStepLine, watchTask } from './taskProgress.ts';

const DEFAULT_URL = 'http://127.0.0.1:8080';

interface ClientFlags {
  url?: string;
  json?: boolean;
  token?: string;
  apiKey?: string;
}

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === '' ? undefined : value.trim();

/** A flag wins over its variable; a token over an API key (the server refuses both at once). */
function clientAuthFrom(
  flags: ClientFlags,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ClientAuth | undefined {
  const token =
    nonEmpty(flags.token) ??
    (nonEmpty(flags.apiKey) === undefined ? nonEmpty(env.TASKER_AUTH_TOKEN) : undefined);
  if (token !== undefined) return { token };
  const apiKey = nonEmpty(flags.apiKey) ?? nonEmpty(env.TASKER_API_KEY);
  return apiKey === undefined ? undefined : { apiKey };
}

function clientFrom(flags: ClientFlags): TaskerClient {
  const auth = clientAuthFrom(flags);
  return new TaskerClient(
    flags.url ?? process.env.TASKER_URL ?? DEFAULT_URL,
    auth === undefined ? {} : { auth },
  );
}

function withClientOptions(command: Command): Command {
  return command
    .option('--url <url>', `orchestration REST API (default: TASKER_URL, else ${DEFAULT_URL})`)
    .option('--token <jwt>', 'bearer token for a server with auth on (default: TASKER_AUTH_TOKEN)')
    .option('--api-key <key>', 'API key for a server with auth on (default: TASKER_API_KEY)')
    .option('--json', 'print the server answer as JSON (for scripts)', false);
}

/** A JSON option value, or `@file` to read it from a file. */
export function parseJsonOption(value: string, option: string): unknown {
  const text = value.startsWith('@') ? readFileSync(value.slice(1), 'utf8') : value;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `${option} is not valid JSON (${(error as Error).message}); pass e.g. '{"n": 3}' or @file.json`,
    );
  }
}

/** `namespace/name` or `namespace/name@version`. */
export function parseTemplateRef(ref: string): { namespace: string; name: string; version?: string } {
  const match = /^([^/@\s]+)\/([^/@\s]+)(?:@([^/@\s]+))?$/.exec(ref);
  if (match === null) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `"${ref}" is not a template reference; write namespace/name or namespace/name@version, e.g. math/diamond_pattern@1.0.0`,
    );
  }
  return {
    namespace: match[1] ?? '',
    name: match[2] ?? '',
    ...(match[3] !== undefined && { version: match[3] }),
  };
}

/** A step given by uuid or by name within the task. */
async function stepUuidOf(client: TaskerClient, taskUuid: string, step: string): Promise<string> {
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(step)) return step;
  const task = await client.getTask(taskUuid);
  const found = (task.steps ?? []).find((s) => s.name === step);
  if (found === undefined) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `task ${taskUuid} has no step named "${step}"; its steps: ${(task.steps ?? []).map((s) => s.name).join(', ')}`,
    );
  }
  return found.step_uuid;
}

function printStep(step: StepView): void {
  out(formatStepLine(step).trimStart());
  out(`  step_uuid: ${step.step_uuid}`);
  out(`  attempts: ${step.attempts}/${step.max_attempts}`);
  if (step.result !== undefined && step.result !== null) out(`  result: ${JSON.stringify(step.result)}`);
  if (step.error !== undefined && step.error !== null) out(`  error: ${JSON.stringify(step.error)}`);
}

/** What a command sent, for the hint under a 401 or 403; never the credential itself. */
function describeCredential(flags: ClientFlags): string {
  const auth = clientAuthFrom(flags);
  if (auth === undefined)
    return 'no credentials were sent: set TASKER_AUTH_TOKEN (a JWT) or TASKER_API_KEY, or pass --token / --api-key';
  if ('token' in auth)
    return `a bearer token was sent (from ${nonEmpty(flags.token) !== undefined ? '--token' : 'TASKER_AUTH_TOKEN'})`;
  return `an API key was sent (from ${nonEmpty(flags.apiKey) !== undefined ? '--api-key' : 'TASKER_API_KEY'})`;
}

interface LiveWorkerRow {
  worker_id: string;
  hostname: string;
  namespaces: string[];
  capacity: number;
  version: string;
  heartbeat_age_seconds: number;
}

/**
 * `tasker worker list`, a subcommand of the `tasker worker` service command: commander runs the service's own
 * action when the first operand is not `list`, so `tasker worker --handlers ...` is unchanged. It reads the
 * registry through the REST API like every other client command, so an operator needs no database access.
 */
export function registerWorkerListCommand(worker: Command): void {
  withClientOptions(
    worker
      .command('list')
      .description(
        'live workers: id, host, namespaces, capacity, version and heartbeat age (GET /v1/workers)',
      ),
  ).action(async (flags: ClientFlags) => {
    const answer = await clientFrom(flags).request<{ workers: LiveWorkerRow[] }>('GET', '/v1/workers');
    if (flags.json === true) {
      printJson(answer);
      return;
    }
    if (answer.workers.length === 0) {
      out('no live worker: start one with `npx tasker worker --handlers <module>` (docs/services.md)');
      return;
    }
    out(
      table(
        ['WORKER', 'HOST', 'NAMESPACES', 'CAPACITY', 'VERSION', 'HEARTBEAT'],
        answer.workers.map((w) => [
          w.worker_id,
          w.hostname,
          w.namespaces.join(','),
          String(w.capacity),
          w.version,
          `${w.heartbeat_age_seconds.toFixed(1)}s ago`,
        ]),
      ),
    );
  });
}

export interface ClientCommands {
  /** A line explaining a 401/403 answer to the last client command, or undefined for any other error. */
  authHint(error: unknown): string | undefined;
}

export function registerClientCommands(program: Command): ClientCommands {
  let lastFlags: ClientFlags = {};
  program.hook('preAction', (_program, action) => {
    lastFlags = action.opts<ClientFlags>();
  });
  const task = program.command('task').description('create, inspect and cancel tasks on a running server');

  withClientOptions(
    task
      .command('create <template>')
      .description('run a template: namespace/name[@version]')
      .option('-c, --context <json>', 'task context as JSON, or @file.json', '{}')
      .option('--idempotency-key <key>', 'identity of this request (duplicates are refused with 409)')
      .option('--initiator <name>', 'who asked for it')
      .option('--reason <text>', 'why')
      .option('--wait', 'show steps as they progress until the task ends; exit 1 unless it completes', false),
  ).action(
    async (
      ref: string,
      flags: ClientFlags & {
        context: string;
        idempotencyKey?: string;
        initiator?: string;
        reason?: string;
        wait: boolean;
      },
    ) => {
      const client = clientFrom(flags);
      const body: TaskRequest = {
        ...parseTemplateRef(ref),
        // The server checks that the context is a JSON object (400 TASKER_INVALID_TASK_REQUEST).
        context: parseJsonOption(flags.context, '--context') as TaskRequest['context'],
        ...(flags.idempotencyKey !== undefined && { idempotency_key: flags.idempotencyKey }),
        ...(flags.initiator !== undefined && { initiator: flags.initiator }),
        ...(flags.reason !== undefined && { reason: flags.reason }),
      };
      if (!flags.wait) {
        const created = await client.createTask(body);
        if (flags.json === true) printJson(created);
        else
          out(
            `✓ created task ${created.task_uuid} (${created.namespace}/${created.name}, ${created.status})`,
          );
        return;
      }
      const final = await watchTask(
        client,
        body,
        (step) => {
          if (flags.json !== true) out(formatStepLine(step));
        },
        { onWarning: (warning) => flags.json !== true && out(formatWarning(warning)) },
      );
      const { elapsedMs, ...view } = final;
      if (flags.json === true) printJson(view);
      else
        out(
          `${final.status === 'complete' ? '✓' : '✗'} task ${final.task_uuid} ${final.status} in ${elapsedMs} ms`,
        );
      if (final.status !== 'complete') process.exitCode = 1;
    },
  );

  withClientOptions(
    task
      .command('get <task_uuid>')
      .description('a task with its steps')
      .option(
        '--watch',
        'follow the task until it ends, showing steps as they progress; exit 1 unless it completes',
        false,
      ),
  ).action(async (taskUuid: string, flags: ClientFlags & { watch: boolean }) => {
    const client = clientFrom(flags);
    if (!flags.watch) {
      const view = await client.getTask(taskUuid);
      if (flags.json === true) printJson(view);
      else printTask(view);
      return;
    }
    const final = await watchTask(
      client,
      { taskUuid },
      (step) => {
        if (flags.json !== true) out(formatStepLine(step));
      },
      { onWarning: (warning) => flags.json !== true && out(formatWarning(warning)) },
    );
    const { elapsedMs: _elapsed, ...view } = final;
    if (flags.json === true) printJson(view);
    else out(`${final.status === 'complete' ? '✓' : '✗'} task ${final.task_uuid} ${final.status}`);
    if (final.status !== 'complete') process.exitCode = 1;
  });

  withClientOptions(
    task
      .command('list')
      .description('tasks, newest first')
      .option('--namespace <ns>')
      .option('--name <name>')
      .option('--status <status>')
      .option('--page <n>', 'page number', '1')
      .option('--per-page <n>', 'tasks per page (max 100)', '25'),
  ).action(
    async (
      flags: ClientFlags & {
        namespace?: string;
        name?: string;
        status?: string;
        page: string;
        perPage: string;
      },
    ) => {
      const answer = await clientFrom(flags).listTasks({
        namespace: flags.namespace,
        name: flags.name,
        status: flags.status,
        page: flags.page,
        per_page: flags.perPage,
      });
      if (flags.json === true) {
        printJson(answer);
        return;
      }
      out(
        table(
          ['TASK', 'TEMPLATE', 'STATUS', 'DONE', 'CREATED'],
          answer.tasks.map((t: TaskSummary) => [
            t.task_uuid,
            `${t.namespace}/${t.name}@${t.version}`,
            t.status,
            typeof t.completion_percentage === 'number' ? `${t.completion_percentage}%` : '',
            typeof t.created_at === 'string' ? t.created_at : '',
          ]),
        ),
      );
      const p = answer.pagination;
      out(`page ${String(p.page)} of ${String(p.total_pages)} (${String(p.total_count)} tasks)`);
    },
  );

  withClientOptions(
    task.command('cancel <task_uuid>').description('cancel a task and its unfinished steps'),
  ).action(async (taskUuid: string, flags: ClientFlags) => {
    const view = await clientFrom(flags).cancelTask(taskUuid);
    if (flags.json === true) printJson(view);
    else out(`✓ task ${view.task_uuid} ${view.status}`);
  });

  const step = program.command('step').description('operator fixes on one step (the task carries on)');
  const stepAction = (
    name: string,
    description: string,
    build: (flags: Record<string, string | undefined>) => StepActionRequest,
    extra: (command: Command) => Command = (c) => c,
  ): void => {
    withClientOptions(
      extra(
        step
          .command(`${name} <task_uuid> <step>`)
          .description(`${description}; <step> is the step's uuid or name`)
          .option('--reason <text>', 'why (kept in the step history)')
          .option('--by <operator>', 'who (kept in the step history)'),
      ),
    ).action(
      async (taskUuid: string, stepRef: string, flags: ClientFlags & Record<string, string | undefined>) => {
        const client = clientFrom(flags);
        const stepUuid = await stepUuidOf(client, taskUuid, stepRef);
        const body: StepActionRequest = {
          ...build(flags),
          ...(flags.reason !== undefined && { reason: flags.reason }),
          ...(flags.by !== undefined && { resolved_by: flags.by }),
        };
        const view = await client.stepAction(taskUuid, stepUuid, body);
        if (flags.json === true) printJson(view);
        else printStep(view);
      },
    );
  };
  stepAction('reset', 'run a failed step again from attempt 1', () => ({ action_type: 'reset_for_retry' }));
  stepAction('resolve', 'mark a step resolved by hand (its dependents run)', () => ({
    action_type: 'resolve_manually',
  }));
  stepAction(
    'complete',
    'complete a step by hand with a result its dependents see',
    (flags) => ({
      action_type: 'complete_manually',
      completion_data: {
        result: parseJsonOption(flags.result ?? 'null', '--result'),
        // The server checks that the metadata is a JSON object (400 TASKER_INVALID_REQUEST).
        ...(flags.metadata !== undefined && {
          metadata: parseJsonOption(flags.metadata, '--metadata') as Record<string, unknown>,
        }),
      },
    }),
    (c) =>
      c
        .requiredOption('--result <json>', 'the step result as JSON, or @file.json')
        .option('--metadata <json>', 'extra JSON kept with the step history'),
  );

  const dlq = program
    .command('dlq')
    .description('the dead-letter queue: tasks moved to error for investigation');
  withClientOptions(
    dlq
      .command('list')
      .option('--status <status>', 'pending, manually_resolved, permanently_failed or cancelled')
      .option('--reason <reason>')
      .option('--namespace <ns>')
      .option('--limit <n>', 'entries', '25')
      .option('--offset <n>', 'skip', '0'),
  ).action(
    async (
      flags: ClientFlags & {
        status?: string;
        reason?: string;
        namespace?: string;
        limit: string;
        offset: string;
      },
    ) => {
      const client = clientFrom(flags);
      const query = new URLSearchParams();
      if (flags.status !== undefined) query.set('resolution_status', flags.status);
      if (flags.reason !== undefined) query.set('reason', flags.reason);
      if (flags.namespace !== undefined) query.set('namespace', flags.namespace);
      query.set('limit', flags.limit);
      query.set('offset', flags.offset);
      const answer = await client.request<{ entries: Record<string, unknown>[]; total?: number }>(
        'GET',
        `/v1/dlq?${query.toString()}`,
      );
      if (flags.json === true) {
        printJson(answer);
        return;
      }
      out(
        table(
          ['ENTRY', 'TASK', 'REASON', 'STATUS', 'ORIGINAL STATE', 'SINCE'],
          answer.entries.map((e) => [
            String(e.dlq_entry_uuid),
            String(e.task_uuid),
            String(e.dlq_reason),
            String(e.resolution_status),
            String(e.original_state),
            String(e.dlq_timestamp),
          ]),
        ),
      );
      if (answer.total !== undefined) out(`${answer.entries.length} of ${answer.total} entries`);
    },
  );
  withClientOptions(dlq.command('get <entry_uuid>')).action(async (entry: string, flags: ClientFlags) => {
    const answer = await clientFrom(flags).request('GET', `/v1/dlq/entry/${encodeURIComponent(entry)}`);
    printJson(answer);
  });
  withClientOptions(dlq.command('stats')).action(async (flags: ClientFlags) => {
    const stats = await clientFrom(flags).request<Record<string, unknown>>('GET', '/v1/dlq/stats');
    if (flags.json === true) {
      printJson(stats);
      return;
    }
    for (const [key, value] of Object.entries(stats))
      out(`${key}: ${typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)}`);
  });
  withClientOptions(
    dlq
      .command('update <entry_uuid>')
      .description('record how an entry was resolved')
      .requiredOption('--status <status>', 'manually_resolved, permanently_failed or cancelled')
      .option('--notes <text>')
      .option('--by <operator>'),
  ).action(async (entry: string, flags: ClientFlags & { status: string; notes?: string; by?: string }) => {
    const answer = await clientFrom(flags).request<Record<string, unknown>>(
      'PATCH',
      `/v1/dlq/entry/${encodeURIComponent(entry)}`,
      {
        resolution_status: flags.status,
        ...(flags.notes !== undefined && { resolution_notes: flags.notes }),
        ...(flags.by !== undefined && { resolved_by: flags.by }),
      },
    );
    if (flags.json === true) printJson(answer);
    else out(`✓ DLQ entry ${entry} ${String(answer.resolution_status)}`);
  });
  return {
    authHint: (error) => {
      if (!(error instanceof ServerAnswerError) || (error.status !== 401 && error.status !== 403))
        return undefined;
      const sent = describeCredential(lastFlags);
      return error.status === 401
        ? `  the server did not accept the credentials: ${sent}`
        : `  the credentials were accepted but lack the permission named above: ${sent}; ask for a token or key that grants it`;
    },
  };
}
