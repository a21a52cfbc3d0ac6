import type { Command } from 'commander';
import { migrate } from '../db/migrate.ts';
import { schemaReportLine } from './schemaReport.ts';
import { PgmqMessagingProvider } from '../messaging/pgmq/pgmqMessagingProvider.ts';
import type { QueueSignal } from '../messaging/messagingProvider.ts';
import { openCreatingDatabase, resolveDatabase } from './databaseOption.ts';
import { loadConfig } from '../config/loadConfig.ts';
import { listenerOptions } from '../services/runtimeOptions.ts';
import { createLogger } from '../observability/logger.ts';
import type { DatabaseOptions } from './databaseOption.ts';

const EMBEDDED_DEMO_URL = 'pglite:./.tasker/demo';
const QUEUE = 'worker_demo_queue';

interface DemoMessage {
  n: number;
  sentAt: number;
}

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/**
 * A guided round trip through the queue: a producer sends messages with NOTIFY, a consumer sleeps until a
 * notification wakes it, claims the message under a visibility timeout and archives it.
 */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'watch the queue work: send, wake up on NOTIFY, claim, archive (embedded database unless DATABASE_URL is set)',
    )
    .option(
      '-d, --database-url <url>',
      `database to use (default: DATABASE_URL when set, else ${EMBEDDED_DEMO_URL})`,
    )
    .action(async (options: DatabaseOptions) => {
      const loaded = loadConfig();
      const { config } = loaded;
      // The demo runs without a server unless one is asked for explicitly.
      const serverAsked =
        options.databaseUrl !== undefined ||
        [...loaded.provenance.values()].some((s) => s.startsWith('environment variable DATABASE_URL'));
      const url = serverAsked ? resolveDatabase(options, loaded).url : EMBEDDED_DEMO_URL;
      const { db } = await openCreatingDatabase(url, resolveDatabase(options, loaded).pool);
      // Human-readable lines go to stdout; warnings and errors still reach stderr as JSON logs.
      const level =
        config.telemetry.log_level === 'info' ||
        config.telemetry.log_level === 'debug' ||
        config.telemetry.log_level === 'trace'
          ? 'warn'
          : config.telemetry.log_level;
      const provider = new PgmqMessagingProvider(db, {
        logger: createLogger({ level }),
        listenerOptions: listenerOptions(config),
      });
      try {
        out(
          `Database: ${db.displayName} (${db.kind === 'pglite' ? 'embedded PGlite, no server needed' : 'PostgreSQL'})`,
        );
        const report = await migrate(db);
        out(schemaReportLine(report));
        await provider.ensureQueue(QUEUE);
        await runDemo(provider, config.pgmq.visibility_timeout_seconds);
      } finally {
        await provider.close();
        await db.close();
      }
    });
}

async function runDemo(provider: PgmqMessagingProvider, visibilityTimeoutSeconds: number): Promise<void> {
  const total = 6;
  const latencies: number[] = [];
  let draining = Promise.resolve();
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });

  const drain = async (): Promise<void> => {
    for (;;) {
      const messages = await provider.receive<DemoMessage>(QUEUE, {
        limit: 10,
        visibilityTimeoutSeconds,
      });
      if (messages.length === 0) return;
      for (const message of messages) {
        const latency = Date.now() - message.payload.sentAt;
        if (message.payload.n <= total) latencies.push(latency);
        await provider.ack(QUEUE, message.id);
        out(
          `  ← consumer claimed #${message.id} ${JSON.stringify({ n: message.payload.n })} ${latency} ms after send, archived`,
        );
      }
      if (latencies.length >= total) done();
    }
  };
  const onSignal = (signal: QueueSignal): void => {
    if (signal.kind === 'message_ready' && signal.readyAt !== null && signal.readyAt.getTime() > Date.now()) {
      // A delayed message: the notification says when it becomes visible, so wake up then instead of polling.
      const wait = signal.readyAt.getTime() - Date.now();
      out(`  ⏰ notified of #${signal.messageId}, visible in ${wait} ms; waking then`);
      setTimeout(() => {
        draining = draining.then(drain);
      }, wait + 5);
      return;
    }
    draining = draining.then(drain);
  };

  // Whatever an earlier run left behind is drained first by the catch-up signal subscribe sends.
  const subscription = await provider.subscribe([QUEUE], onSignal);
  await draining;
  latencies.length = 0;
  out(`✓ Consumer listening on ${QUEUE} (LISTEN pgmq_message_ready.demo)`);
  for (let n = 1; n < total; n++) {
    const id = await provider.send(QUEUE, { n, sentAt: Date.now() });
    out(`→ producer sent #${id} {"n":${n}}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  const delayedId = await provider.send(QUEUE, { n: total, sentAt: Date.now() + 1_000 }, { delaySeconds: 1 });
  out(`→ producer sent #${delayedId} {"n":${total}} with a 1 s delay`);

  const timeout = setTimeout(done, 10_000);
  await finished;
  clearTimeout(timeout);
  await subscription.close();
  await draining;
  const depth = await provider.queueDepth(QUEUE);
  const sorted = [...latencies].sort((a, b) => a - b);
  out('');
  out(`✓ ${latencies.length}/${total} messages delivered exactly once; queue depth now ${depth.total}`);
  if (sorted.length > 0)
    out(
      `✓ send → consumer wake-up: median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms`,
    );
  if (latencies.length < total)
    throw new Error(`only ${latencies.length} of ${total} messages arrived within 10 s`);
}
