import { EventTypes } from '../../events/catalog.ts';
import { ApiServerEventTypes } from '../../events/upstream/apiserversource.ts';
import { declareStep, routed } from '../../runtime/declare.ts';
import { KSERVE_ISVC_LABEL } from '../../runtime/labels.ts';
import { Resources } from '../../runtime/resources.ts';

const PREDICTOR = 'predictor';

export const declaration = declareStep({
  name: 'verify-endpoint',
  input: 'cloudevent',
  warm: true,
  consumes: [
    { name: 'restarted', filter: { type: EventTypes.predictorRestarted } },
    { name: 'pod-added', filter: routed(ApiServerEventTypes.add, PREDICTOR) },
    { name: 'pod', filter: routed(ApiServerEventTypes.update, PREDICTOR) },
    // No delete Trigger: a pod going away can never let a run conclude (only the release's own Ready pods can);
    // the one case it matters (a starting pod removed while the others are Ready) is concluded by the reconcile.
  ],
  reconcile: true,
  // The predictor pods of every InferenceService in the catalog.
  apiServerSources: [{
    name: 'mlops-predictor-pods', route: PREDICTOR,
    resource: (catalog) => ({ apiVersion: Resources.pod.apiVersion, kind: Resources.pod.kind, selector: {
      matchExpressions: [{ key: KSERVE_ISVC_LABEL, operator: 'In', values: [...new Set(catalog.models.map((m) => m.inferenceService))].sort() }],
    } }),
  }],
  // trainingRequested: a request queued on the run's lock is re-submitted when the run ends (runtime/finish.ts).
  emits: [EventTypes.deploymentVerified, EventTypes.deploymentFailed, EventTypes.trainingRequested],
  sink: true,
  rules: [
    // list: a predictor pod event is matched to the model's Verifying run through the ModelRuns' status.
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'list', 'patch'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'delete'] },
  ],
  load: async () => (await import('./index.ts')).step,
});
