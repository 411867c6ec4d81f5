import { EventTypes } from '../../events/catalog.ts';
import { ApiServerEventTypes } from '../../events/upstream/apiserversource.ts';
import { declareStep, jobStepRules, routed } from '../../runtime/declare.ts';
import { jobsOf } from '../../runtime/labels.ts';
import { Resources } from '../../runtime/resources.ts';
import { controlsReadRules } from '../../runtime/controls.ts';
import { s3StorageSecretReadRules } from '../../runtime/storage-config.ts';

const PROMOTE = 'promote';

export const declaration = declareStep({
  name: 'restart-predictor',
  input: 'cloudevent',
  warm: true,
  consumes: [
    { name: 'approved', filter: { type: EventTypes.modelApproved } },
    { name: 'failed', filter: { type: EventTypes.deploymentFailed } },
    { name: 'job', filter: routed(ApiServerEventTypes.update, PROMOTE) },
  ],
  reconcile: true,
  apiServerSources: [{ name: 'mlops-promote-jobs', route: PROMOTE, resource: { apiVersion: Resources.job.apiVersion, kind: Resources.job.kind, selector: jobsOf(['promote', 'rollback']) } }],
  // trainingRequested: a request queued on the run's lock is re-submitted when the run ends (runtime/finish.ts).
  emits: [EventTypes.predictorRestarted, EventTypes.deploymentRolledback, EventTypes.runFailed, EventTypes.trainingRequested],
  sink: true,
  // Day-2 controls: is the model paused or pinned (docs/day2.md). A model served from a bucket: the S3 credentials
  // for the presigned upload URL, the sha256 check and pruning (docs/storage.md "Promotion into the bucket").
  catalogRules: (catalog) => [...controlsReadRules(catalog), ...s3StorageSecretReadRules(catalog)],
  rules: jobStepRules(['get', 'patch'], [
    // The restart: one merge patch of the predictor's release annotation (and storageUri for a bucket model).
    { apiGroups: ['serving.kserve.io'], resources: ['inferenceservices'], verbs: ['get', 'patch'] },
  ]),
  load: async () => (await import('./index.ts')).step,
});
