import { EventTypes } from '../../events/catalog.ts';
import { ApiServerEventTypes } from '../../events/upstream/apiserversource.ts';
import { declareStep, routed } from '../../runtime/declare.ts';
import { Labels, MANAGER } from '../../runtime/labels.ts';
import { Resources } from '../../runtime/resources.ts';

const TRAINING = 'training';

export const declaration = declareStep({
  name: 'track-training',
  input: 'cloudevent',
  warm: true,
  consumes: [{ name: 'nvj', filter: routed(ApiServerEventTypes.update, TRAINING) }],
  reconcile: true,
  apiServerSources: [{
    name: 'mlops-nvjs', route: TRAINING,
    resource: { apiVersion: Resources.notebookValidationJob.apiVersion, kind: Resources.notebookValidationJob.kind, selector: { matchLabels: { [Labels.managedBy]: MANAGER } } },
  }],
  // trainingRequested: a request queued on the run's lock is re-submitted when the run ends (runtime/finish.ts).
  emits: [EventTypes.trainingSucceeded, EventTypes.trainingFailed, EventTypes.trainingRequested],
  sink: true,
  rules: [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'patch'] },
    { apiGroups: ['mlops.mlops.dev'], resources: ['notebookvalidationjobs'], verbs: ['get'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'delete'] },
  ],
  load: async () => (await import('./index.ts')).step,
});
