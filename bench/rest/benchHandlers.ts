/** The handlers module `tasker worker --handlers` loads in the REST benchmark: the engine bench's no-op. */
export { benchHandlers as default } from '../engine/benchTemplates.ts';
