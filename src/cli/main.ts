import { Command } from 'commander';
import { isTaskerError } from '../domain/errors.ts';
import { redactSecrets } from '../domain/secretRedaction.ts';
import { registerMigrateCommand } from './migrateCommand.ts';
import { registerQueueCommands } from './queueCommands.ts';
import { registerDemoCommand } from './demoCommand.ts';
import { registerConfigCommands } from './configCommands.ts';
import { registerServiceCommands } from './serviceCommands.ts';
import { registerDevCommand } from './devCommand.ts';
import { registerAuthCommands } from './authCommands.ts';
import { registerClientCommands, registerWorkerListCommand } from './clientCommands.ts';
import { TASKER_VERSION } from '../services/version.ts';

// `tasker config show | head` closes the pipe early: that is the reader being done, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const program = new Command()
  .name('tasker')
  .description('Tasker: DAG workflow orchestration on PostgreSQL for TypeScript step handlers')
  .version(TASKER_VERSION)
  .showHelpAfterError();

registerMigrateCommand(program);
registerQueueCommands(program);
registerDemoCommand(program);
registerConfigCommands(program);
const serviceCommands = registerServiceCommands(program);
registerDevCommand(program);
const clientCommands = registerClientCommands(program);
registerWorkerListCommand(serviceCommands.worker);
registerAuthCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Operators get the message, its code and no stack trace; TASKER_DEBUG=1 shows the stack.
  if (isTaskerError(error)) {
    process.stderr.write(`✗ ${redactSecrets(error.message)} [${error.code}]\n`);
    const hint = clientCommands.authHint(error);
    if (hint !== undefined) process.stderr.write(`${hint}\n`);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`✗ ${redactSecrets(message)}\n`);
  }
  if (process.env.TASKER_DEBUG === '1' && error instanceof Error && error.stack !== undefined) {
    process.stderr.write(`${redactSecrets(error.stack)}\n`);
  }
  process.exitCode = 1;
  // A failed command has nothing left to do. Whatever it left open (a handle a library did not close) must not
  // keep the process alive after the error is printed; the timer is unref'd, so a process that ends on its own
  // ends at once.
  setTimeout(() => process.exit(1), 2000).unref();
}
