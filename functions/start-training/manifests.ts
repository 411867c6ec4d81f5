import type { TrainingRequested } from '../../events/index.ts';
import { dataSourceFor, type CatalogModel } from '../../runtime/catalog.ts';
import { Annotations, Labels, MANAGER, modelRunOwnerRef, runLabels } from '../../runtime/labels.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import type { ModelRun } from '../../runtime/resources.ts';
import { TRACE_ANNOTATION } from '../../runtime/trace.ts';

// The ModelRun and NotebookValidationJob start-training creates (docs/design.md, Kubernetes contract).

export const MODEL_MOUNT = '/mnt/models';
export const MODEL_VOLUME = 'model-storage';

export function profileOf(data: TrainingRequested, model: CatalogModel): 'cpu' | 'gpu' {
  return data.profile ?? model.profile;
}

export function modelRunManifest(run: string, data: TrainingRequested, model: CatalogModel, idempotencyKey: string, traceparent?: string): KubeObject {
  const training = trainingParameters(data, model);
  return {
    metadata: {
      name: run,
      labels: { [Labels.managedBy]: MANAGER, [Labels.model]: model.name, [Labels.run]: run, [Labels.trigger]: data.trigger, [Labels.phase]: 'Pending' },
      annotations: { [Annotations.idempotencyKey]: idempotencyKey.slice(0, 512), ...(traceparent ? { [TRACE_ANNOTATION]: traceparent } : {}) },
    },
    spec: {
      model: model.name,
      trigger: data.trigger,
      idempotencyKey: idempotencyKey.slice(0, 512),
      profile: profileOf(data, model),
      ...(data.provenance ? { provenance: data.provenance } : {}),
      training,
      ...(data.requestedBy ? { requestedBy: data.requestedBy } : {}),
      ...(data.reason ? { reason: data.reason } : {}),
    },
  };
}

export function trainingParameters(data: TrainingRequested, model: CatalogModel) {
  const hours = data.trainingHours ?? model.trainingHours;
  return {
    // Scheduled runs and the rest may differ (catalog `dataSource` per trigger).
    dataSource: data.dataSource ?? dataSourceFor(model, data.trigger),
    trainingHours: hours,
    trainingDays: Math.max(1, Math.ceil(hours / 24)),
    gitUrl: model.notebook.gitUrl,
    gitRef: data.gitRef ?? model.notebook.gitRef,
    notebookPath: data.notebookPath ?? model.notebook.path,
    image: model.notebook.image,
    serviceAccountName: model.serviceAccountName,
    prometheusUrl: model.prometheusUrl,
  };
}

export function nvjManifest(modelRun: ModelRun, model: CatalogModel): KubeObject {
  const run = modelRun.metadata.name ?? '';
  const spec = modelRun.spec;
  // A manual rollback run (docs/day2.md) never trains; start-training never builds an NVJ for one.
  if (spec.trigger === 'manual-rollback') throw new Error(`ModelRun ${run} is a manual rollback: it has no NotebookValidationJob`);
  const t = spec.training ?? trainingParameters({ model: model.name, trigger: spec.trigger }, model);
  const gpu = spec.profile === 'gpu';
  const quantities = (m: Record<string, string | number> | undefined): Record<string, string> =>
    Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, String(v)]));
  const limits = quantities(model.resources.limits);
  const requests = quantities(model.resources.requests);
  if (gpu) {
    limits[model.gpu.resourceName] = String(model.gpu.count);
    requests[model.gpu.resourceName] = String(model.gpu.count);
  }
  const podConfig: Record<string, unknown> = {
    containerImage: t.image ?? model.notebook.image,
    serviceAccountName: t.serviceAccountName ?? model.serviceAccountName,
    env: [
      { name: 'DATA_SOURCE', value: t.dataSource ?? dataSourceFor(model, spec.trigger) },
      { name: 'TRAINING_HOURS', value: String(t.trainingHours ?? model.trainingHours) },
      { name: 'TRAINING_DAYS', value: String(t.trainingDays ?? 1) },
      { name: 'PROMETHEUS_URL', value: t.prometheusUrl ?? model.prometheusUrl },
      { name: 'MODEL_NAME', value: model.name },
      { name: 'MLOPS_RUN', value: run },
    ],
    envFrom: [{ secretRef: { name: model.storage.configSecret } }],
    resources: { ...(Object.keys(requests).length ? { requests } : {}), ...(Object.keys(limits).length ? { limits } : {}) },
    // The unchanged notebook writes /mnt/models/<model>/model.pkl; subPath makes that the run's staging folder.
    volumes: [{ name: MODEL_VOLUME, persistentVolumeClaim: { claimName: gpu ? model.storage.gpuPvc : model.storage.pvc } }],
    volumeMounts: [{ name: MODEL_VOLUME, mountPath: MODEL_MOUNT, subPath: `.runs/${run}` }],
  };
  if (gpu) {
    podConfig.tolerations = model.gpu.tolerations;
    podConfig.nodeSelector = model.gpu.nodeSelector;
  }
  return {
    metadata: {
      name: run,
      labels: runLabels(model.name, run, 'training'),
      ownerReferences: modelRunOwnerRef(modelRun),
    },
    spec: {
      notebook: {
        git: { url: t.gitUrl ?? model.notebook.gitUrl, ref: t.gitRef ?? model.notebook.gitRef, ...(model.notebook.credentialsSecret ? { credentialsSecret: model.notebook.credentialsSecret } : {}) },
        path: t.notebookPath ?? model.notebook.path,
      },
      podConfig,
      // Informational only: the operator does not enforce it; the watchdog does.
      timeout: `${model.deadlines.trainingMinutes}m`,
    },
  };
}
