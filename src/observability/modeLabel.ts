import type { DeploymentMode } from '../config/schema.ts';

/** The mode label of metrics, logs and status: `hybrid`, `event_driven`, `polling_only`. */
export function modeLabel(mode: DeploymentMode): string {
  switch (mode) {
    case 'Hybrid':
      return 'hybrid';
    case 'EventDrivenOnly':
      return 'event_driven';
    case 'PollingOnly':
      return 'polling_only';
  }
}
