import { readFileSync } from 'node:fs';

/** This package's version, from package.json (reported by health endpoints and `tasker --version`). */
export const TASKER_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
