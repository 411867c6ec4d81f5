import { EventTypes } from '../../events/catalog.ts';
import { PING_EVENT_TYPE } from '../../events/upstream/pingsource.ts';
import { declareStep, routed } from '../../runtime/declare.ts';

const TICK = 'watchdog';

export const declaration = declareStep({
  name: 'watchdog',
  input: 'cloudevent',
  consumes: [{ name: 'tick', filter: routed(PING_EVENT_TYPE, TICK) }],
  pingSources: () => [{ name: 'watchdog-tick', route: TICK, schedule: '* * * * *', timezone: 'UTC', data: '{"watchdog":true}' }],
  // run.reconcile wakes the steps that declare `reconcile` (docs/run-lifecycle.md); trainingRequested: catch-up
  // for missed schedule slots and requests queued on a lock it frees.
  emits: [EventTypes.runReconcile, EventTypes.runFailed, EventTypes.deploymentFailed, EventTypes.trainingRequested],
  sink: true,
  rules: [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'list', 'patch', 'delete'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'delete'] },
    // list: the reconcile reads every unfinished run's world (docs/run-lifecycle.md); it writes none of it.
    { apiGroups: ['mlops.mlops.dev'], resources: ['notebookvalidationjobs'], verbs: ['list', 'delete'] },
    { apiGroups: ['batch'], resources: ['jobs'], verbs: ['list', 'delete'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    { apiGroups: ['serving.kserve.io'], resources: ['inferenceservices'], verbs: ['list'] },
    { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update'] },
  ],
  load: async () => (await import('./index.ts')).step,
});
