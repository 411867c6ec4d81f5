import type { CatalogModel } from '../../runtime/catalog.ts';
import { DEFAULT_UTILITY_IMAGE, GPU_MOUNT, SHARED_MOUNT, stepJobManifest } from '../../runtime/jobs.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import type { ModelRun } from '../../runtime/resources.ts';

// The `<run>-copy` Job: config/jobs/copy.py (standard library only) copies `.runs/<run>/<model>/` from the GPU PVC
// (where GPU training wrote it; GPU nodes cannot mount the CephFS PVC) to the shared PVC, verifying sha256.

export function copyEnv(runName: string, model: CatalogModel): Record<string, string> {
  return { SRC_ROOT: GPU_MOUNT, DST_ROOT: SHARED_MOUNT, RUN: runName, MODEL: model.name };
}

export function copyJobManifest(run: ModelRun, model: CatalogModel): KubeObject {
  return stepJobManifest({
    step: 'copy',
    run,
    model,
    script: 'copy.py',
    image: DEFAULT_UTILITY_IMAGE,
    env: copyEnv(run.metadata.name ?? '', model),
    volumes: [
      // The source is only read: mounting it read-only keeps a copy bug from touching the trained model.
      { claimName: model.storage.gpuPvc, mountPath: GPU_MOUNT, readOnly: true },
      { claimName: model.storage.pvc, mountPath: SHARED_MOUNT },
    ],
    deadlineSeconds: model.deadlines.copyMinutes * 60,
  });
}
