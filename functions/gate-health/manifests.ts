import { posix } from 'node:path';
import type { CatalogModel } from '../../runtime/catalog.ts';
import { stagedArtifactPath } from '../../runtime/labels.ts';
import { SHARED_MOUNT, stepJobManifest } from '../../runtime/jobs.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import type { ModelRun } from '../../runtime/resources.ts';

// The `<run>-gate` Job: config/jobs/gate.py in the notebook image (joblib, numpy, sklearn), the shared PVC mounted
// read-only (the gate never writes a model), the catalog's declared shape and minimums as its environment.

export const GATE_SEED = 42;

/** `artifactPath` is the staged model's path on the shared PVC (status.artifact.path; argocd-sync runs stage elsewhere). */
/**
 * `trigger` picks the catalog's per-trigger baseline thresholds inside the script (drift: agreement advisory).
 * The served release and the reference data are read from the same read-only mount (config/jobs/promote.py layout).
 */
export function gateEnv(runName: string, model: CatalogModel, artifactPath: string = stagedArtifactPath(runName, model.name), trigger?: string): Record<string, string> {
  const output = model.output;
  const baseline = model.gate.baseline && model.referenceData ? {
    BASELINE: JSON.stringify(model.gate.baseline),
    REFERENCE_DATA: `${SHARED_MOUNT}/${model.referenceData.path}`,
    ROOT: SHARED_MOUNT,
    MODEL: model.name,
    ...(trigger ? { TRIGGER: trigger } : {}),
    ...(model.referenceData.anomalyLabel !== undefined ? { ANOMALY_LABEL: JSON.stringify(model.referenceData.anomalyLabel) } : {}),
  } : {};
  return {
    MODEL_DIR: `${SHARED_MOUNT}/${posix.dirname(artifactPath)}`,
    FEATURES: String(model.features.count),
    OUTPUT_KIND: output.kind,
    ...(output.kind === 'label' ? { LABELS: JSON.stringify(output.labels) } : { OUTPUT_WIDTH: String(output.width) }),
    MIN_BYTES: String(model.gate.minBytes),
    PROBE_ROWS: String(model.gate.probeRows),
    SEED: String(GATE_SEED),
    MAX_LOAD_SECONDS: String(model.gate.maxLoadSeconds),
    ...(model.serving?.sklearnVersion ? { SERVING_SKLEARN: model.serving.sklearnVersion } : {}),
    ...baseline,
  };
}

export function gateJobManifest(run: ModelRun, model: CatalogModel): KubeObject {
  return stepJobManifest({
    step: 'gate',
    run,
    model,
    script: 'gate.py',
    image: model.notebook.image,
    env: gateEnv(run.metadata.name ?? '', model, run.status?.artifact?.path, run.spec.trigger),
    volumes: [{ claimName: model.storage.pvc, mountPath: SHARED_MOUNT, readOnly: true }],
    deadlineSeconds: model.deadlines.gateMinutes * 60,
  });
}
