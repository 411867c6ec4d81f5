import { EventTypes } from '../../events/catalog.ts';
import { ApiServerEventTypes } from '../../events/upstream/apiserversource.ts';
import { declareStep, routed } from '../../runtime/declare.ts';
import { jobsOf } from '../../runtime/labels.ts';
import { Resources } from '../../runtime/resources.ts';

const GATE = 'gate';

export const declaration = declareStep({
  name: 'gate-health',
  input: 'cloudevent',
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
  rules: [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'list', 'patch'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'create', 'delete'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/finalizers'], verbs: ['update'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    // A Job that cannot start shows only as a FailedCreate Event on it (runtime/jobs.ts).
    { apiGroups: [''], resources: ['events'], verbs: ['list'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'delete'] },
  ],
  load: async () => (await import('./index.ts')).step,
});
