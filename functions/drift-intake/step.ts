import { EventTypes } from '../../events/catalog.ts';
import { declareStep } from '../../runtime/declare.ts';

// Alertmanager webhooks → training.requested (docs/design.md). Authenticates its callers with a bearer token.
export const declaration = declareStep({
  name: 'drift-intake',
  input: 'http',
  intake: true,
  emits: [EventTypes.trainingRequested],
  sink: true,
  secrets: ['DRIFT_INTAKE_TOKEN'],
  load: async () => (await import('./index.ts')).step,
});
