// Writes docs/configuration.md from the configuration schema. test/unit/configReference.test.ts fails when
// the committed file is stale.
import { writeFileSync } from 'node:fs';
import { renderConfigReference } from '../src/config/configReference.ts';

const target = new URL('../docs/configuration.md', import.meta.url);
writeFileSync(target, renderConfigReference());
process.stdout.write(`wrote ${target.pathname}\n`);
