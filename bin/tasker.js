#!/usr/bin/env node
// The `tasker` command. tsx's loader is registered first so the CLI, and the TypeScript handler modules
// users point it at, run without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
