#!/usr/bin/env node
// The `tasker` command. tsx's loader is registered first so the TypeScript handler modules users point it at
// run without a build step. An installed package runs the built CLI (dist/, made by `npm run build`, which
// `npm pack` runs); this repository's checkout runs its sources through tsx, so an edit needs no rebuild and a
// stale dist/ is never run by mistake. The installed package ships no src/cli/, which tells the two apart.
import { existsSync } from 'node:fs';
import { URL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const sourceEntry = new URL('../src/cli/main.ts', import.meta.url);
await import(existsSync(sourceEntry) ? sourceEntry.href : '../dist/cli/main.js');
