import { EventTypes } from '../../events/catalog.ts';
import { ApiServerEventTypes } from '../../events/upstream/apiserversource.ts';
import { declareStep, routed } from '../../runtime/declare.ts';
import { Resources } from '../../runtime/resources.ts';
import { DEFAULT_ARGOCD_NAMESPACE } from './triggers.ts';
import { controlsReadRules } from '../../runtime/controls.ts';

const ARGOCD = 'argocd';

export const declaration = declareStep({
  name: 'argocd-sync',
  input: 'cloudevent',
  warm: true,
  consumes: [
    { name: 'nvj-added', filter: routed(ApiServerEventTypes.add, ARGOCD) },
    { name: 'nvj', filter: routed(ApiServerEventTypes.update, ARGOCD) },
    { name: 'nvj-deleted', filter: routed(ApiServerEventTypes.delete, ARGOCD) },
  ],
  // It sees every NVJ in the namespace, not only ours (on-success triggers, waves, status).
  apiServerSources: [{ name: 'mlops-all-nvjs', route: ARGOCD, resource: { apiVersion: Resources.notebookValidationJob.apiVersion, kind: Resources.notebookValidationJob.kind } }],
  emits: [EventTypes.trainingSucceeded],
  sink: true,
  // Day-2 controls: is the model paused or pinned (docs/day2.md).
  catalogRules: controlsReadRules,
  rules: [
    { apiGroups: ['mlops.mlops.dev'], resources: ['notebookvalidationjobs'], verbs: ['get', 'list', 'patch'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'list', 'create', 'patch'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'delete'] },
    { apiGroups: ['apps'], resources: ['deployments'], verbs: ['patch'] },
    { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  ],
  // Applications live in Argo CD's namespace: a Role there for them alone.
  namespaceRules: { [DEFAULT_ARGOCD_NAMESPACE]: [{ apiGroups: ['argoproj.io'], resources: ['applications'], verbs: ['get', 'patch'] }] },
  load: async () => (await import('./index.ts')).step,
});
