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
export function gateEnv(runName: string, model: CatalogModel, artifactPath: string = stagedArtifactPath(runName, model.name)): Record<string, string> {
  const output = model.output;
  return {
    MODEL_DIR: `${SHARED_MOUNT}/${posix.dirname(artifactPath)}`,
    FEATURES: String(model.features.count),
    OUTPUT_KIND: output.kind,
    ...(output.kind === 'label' ? { LABELS: JSON.stringify(output.labels) } : { OUTPUT_WIDTH: String(output.width) }),
    MIN_BYTES: String(model.gate.minBytes),
    PROBE_ROWS: String(model.gate.probeRows),
    SEED: String(GATE_SEED),
    MAX_LOAD_SECONDS: String(model.gate.maxLoadSeconds),
  };
}

export function gateJobManifest(run: ModelRun, model: CatalogModel): KubeObject {
  return stepJobManifest({
    step: 'gate',
    run,
    model,
    script: 'gate.py',
    image: model.notebook.image,
    env: gateEnv(run.metadata.name ?? '', model, run.status?.artifact?.path),
    volumes: [{ claimName: model.storage.pvc, mountPath: SHARED_MOUNT, readOnly: true }],
    deadlineSeconds: model.deadlines.gateMinutes * 60,
  });
}
