import { EventTypes } from '../../events/catalog.ts';
import { ApiServerEventTypes } from '../../events/upstream/apiserversource.ts';
import { declareStep, jobStepRules, routed } from '../../runtime/declare.ts';
import { jobsOf } from '../../runtime/labels.ts';
import { Resources } from '../../runtime/resources.ts';

const COPY = 'copy';

export const declaration = declareStep({
  name: 'copy-gpu-model',
  input: 'cloudevent',
  warm: true,
  consumes: [
    { name: 'trained', filter: { type: EventTypes.trainingSucceeded, profile: 'gpu' } },
    { name: 'job', filter: routed(ApiServerEventTypes.update, COPY) },
  ],
  reconcile: true,
  apiServerSources: [{ name: 'mlops-copy-jobs', route: COPY, resource: { apiVersion: Resources.job.apiVersion, kind: Resources.job.kind, selector: jobsOf(['copy']) } }],
  // trainingRequested: a request queued on the run's lock is re-submitted when the run ends (runtime/finish.ts).
  emits: [EventTypes.modelCopied, EventTypes.runFailed, EventTypes.trainingRequested],
  sink: true,
  rules: jobStepRules(['get', 'patch']),
  load: async () => (await import('./index.ts')).step,
});
