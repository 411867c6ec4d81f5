import { EventTypes } from '../../events/catalog.ts';
import { TektonPipelineRunEventTypes } from '../../events/upstream/tekton.ts';
import { PING_EVENT_TYPE } from '../../events/upstream/pingsource.ts';
import { declareStep, routed } from '../../runtime/declare.ts';
import { Labels } from '../../runtime/labels.ts';
import { controlsReadRules } from '../../runtime/controls.ts';

const SCHEDULE = 'schedule';

export const declaration = declareStep({
  name: 'start-training',
  input: 'cloudevent',
  consumes: [
    { name: 'requested', filter: { type: EventTypes.trainingRequested } },
    { name: 'schedule', filter: routed(PING_EVENT_TYPE, SCHEDULE) },
    { name: 'pipeline', filter: { type: TektonPipelineRunEventTypes.successful } },
  ],
  reconcile: true,
  // One PingSource per enabled, scheduled model; its data names the model.
  pingSources: (catalog) => catalog.models.filter((m) => m.enabled && m.schedule).map((m) => ({
    name: `schedule-${m.name}`, route: SCHEDULE, schedule: m.schedule?.cron ?? '', timezone: m.schedule?.timezone ?? 'UTC',
    data: JSON.stringify({ model: m.name }), labels: { [Labels.model]: m.name },
  })),
  emits: [EventTypes.trainingStarted, EventTypes.trainingSkipped],
  // Day-2 controls: is the model paused or pinned (docs/day2.md).
  catalogRules: controlsReadRules,
  rules: [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'list', 'create', 'patch'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    // delete: a run that cannot create its NVJ (403) ends at once and frees its lock.
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update', 'delete'] },
    // Creating an owned object under OwnerReferencesPermissionEnforcement (OpenShift's default admission) needs
    // `delete` on it and, for blockOwnerDeletion, `update` on the owner's finalizers (docs/openshift.md).
    { apiGroups: ['mlops.mlops.dev'], resources: ['notebookvalidationjobs'], verbs: ['create', 'delete'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/finalizers'], verbs: ['update'] },
  ],
  load: async () => (await import('./index.ts')).step,
});
