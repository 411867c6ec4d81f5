import { EventTypes } from '../../events/catalog.ts';
import { ApiServerEventTypes } from '../../events/upstream/apiserversource.ts';
import { declareStep, jobStepRules, routed } from '../../runtime/declare.ts';
import { jobsOf } from '../../runtime/labels.ts';
import { Resources } from '../../runtime/resources.ts';

const GATE = 'gate';

export const declaration = declareStep({
  name: 'gate-health',
  input: 'cloudevent',
  warm: true,
  consumes: [
    { name: 'trained', filter: { type: EventTypes.trainingSucceeded, profile: 'cpu' } },
    { name: 'copied', filter: { type: EventTypes.modelCopied } },
    { name: 'job', filter: routed(ApiServerEventTypes.update, GATE) },
  ],
  reconcile: true,
  apiServerSources: [{ name: 'mlops-gate-jobs', route: GATE, resource: { apiVersion: Resources.job.apiVersion, kind: Resources.job.kind, selector: jobsOf(['gate']) } }],
  // trainingRequested: a request queued on the run's lock is re-submitted when the run ends (runtime/finish.ts).
  emits: [EventTypes.modelApproved, EventTypes.modelRejected, EventTypes.trainingRequested],
  sink: true,
  rules: jobStepRules(['get', 'list', 'patch']),
  load: async () => (await import('./index.ts')).step,
});
