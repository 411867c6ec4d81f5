import type { CatalogModel } from '../../runtime/catalog.ts';
import { RESTRICTED_CONTAINER_SECURITY, RESTRICTED_POD_SECURITY, RESULT_CONTAINER, SCRIPTS_CONFIGMAP, SCRIPTS_MOUNT } from '../../runtime/jobs.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { Labels, MANAGER } from '../../runtime/labels.ts';

// The placeholder Job (config/jobs/placeholder.py): the notebook image (sklearn, joblib), the catalog's declared
// shape, a presigned URL for one staging object and nothing else — no credentials, no ServiceAccount token, no volume.

export const STEP = 'storage-bootstrap';
export const PLACEHOLDER_DEADLINE_SECONDS = 600;

/** Deterministic per model and attempt, so a redelivery finds the Job instead of creating another. */
export function placeholderJobName(model: string, attempt: string): string {
  return `sbp-${model}-${attempt}`;
}

export function placeholderJobManifest(model: CatalogModel, attempt: string, uploadUrl: string): KubeObject {
  const labels = { [Labels.managedBy]: MANAGER, [Labels.model]: model.name, [Labels.step]: STEP };
  const output = model.output;
  const env: Record<string, string> = {
    MODEL: model.name,
    FEATURES: String(model.features.count),
    OUTPUT_KIND: output.kind,
    ...(output.kind === 'label' ? { LABELS: JSON.stringify(output.labels) } : { OUTPUT_WIDTH: String(output.width) }),
    UPLOAD_URL: uploadUrl,
    TERMINATION_LOG: '/dev/termination-log',
  };
  return {
    metadata: { name: placeholderJobName(model.name, attempt), labels },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: PLACEHOLDER_DEADLINE_SECONDS,
      ttlSecondsAfterFinished: 24 * 3600,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          securityContext: { ...RESTRICTED_POD_SECURITY },
          containers: [{
            name: RESULT_CONTAINER,
            image: model.notebook.image,
            command: ['python3', `${SCRIPTS_MOUNT}/placeholder.py`],
            env: Object.entries(env).map(([name, value]) => ({ name, value })),
            terminationMessagePath: '/dev/termination-log',
            terminationMessagePolicy: 'File',
            volumeMounts: [{ name: 'scripts', mountPath: SCRIPTS_MOUNT, readOnly: true }],
            resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
            securityContext: { ...RESTRICTED_CONTAINER_SECURITY, capabilities: { drop: ['ALL'] } },
          }],
          volumes: [{ name: 'scripts', configMap: { name: SCRIPTS_CONFIGMAP, defaultMode: 0o555 } }],
        },
      },
    },
  };
}
