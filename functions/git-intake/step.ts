import { EventTypes } from '../../events/catalog.ts';
import { declareStep } from '../../runtime/declare.ts';

// GitHub push webhooks → training.requested (docs/design.md). Authenticates its callers with the HMAC signature.
export const declaration = declareStep({
  name: 'git-intake',
  input: 'http',
  intake: true,
  emits: [EventTypes.trainingRequested],
  sink: true,
  secrets: ['GITHUB_WEBHOOK_SECRET'],
  load: async () => (await import('./index.ts')).step,
});
