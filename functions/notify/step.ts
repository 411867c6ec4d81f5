import { EventTypes, nounVerbOf } from '../../events/catalog.ts';
import { declareStep } from '../../runtime/declare.ts';

/** The events notify turns into notifications; their route keys (`training.failed`) come from these (decide.ts). */
export const NotifyEvents = [
  EventTypes.trainingFailed, EventTypes.trainingSkipped, EventTypes.runFailed, EventTypes.modelRejected,
  EventTypes.deploymentFailed, EventTypes.deploymentRolledback, EventTypes.deploymentVerified, EventTypes.storageFailed,
] as const;

export const declaration = declareStep({
  name: 'notify',
  input: 'cloudevent',
  warm: true,
  consumes: NotifyEvents.map((type) => ({ name: nounVerbOf(type).replace('.', '-'), filter: { type } })),
  // notify is the dead-letter sink: its own failures retry longer and never loop back into it.
  deadLetterSink: true,
  delivery: { retry: 10, backoffPolicy: 'exponential', backoffDelay: 'PT1S' },
  secrets: ['SLACK_WEBHOOK_URL', 'SMTP_URL', 'SMTP_FROM'],
  rules: [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'patch'] },
    { apiGroups: [''], resources: ['events'], verbs: ['get', 'create'] },
  ],
  load: async () => (await import('./index.ts')).step,
});
