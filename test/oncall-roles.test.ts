// config/examples/oncall-roles.yaml as the API server enforces it: the day-2 commands run with the user's own
// credentials (docs/day2.md), so the on-call Role may pause, pin and roll back and the viewer Role may only look.
// The example binds groups; the emulator authenticates ServiceAccount tokens, so the test binds the same Roles
// to two ServiceAccounts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseYamlDocs } from '../dev/manifests.ts';
import { runControl, runRollback } from '../cli/day2.ts';
import { NAMESPACE, startTestCluster, type TestCluster } from './kit.ts';
import { Resources } from '../runtime/resources.ts';
import type { KubeObject } from '../runtime/kube.ts';

describe('the on-call Roles example', () => {
  let cluster: TestCluster;
  const kubeconfigs: Record<'oncall' | 'viewer', string> = { oncall: '', viewer: '' };
  const errors: string[] = [];
  const opts = (who: 'oncall' | 'viewer') => ({ env: { KUBECONFIG: kubeconfigs[who], NAMESPACE }, catalogPath: 'config/models.yaml', write: () => undefined, writeErr: (t: string) => { errors.push(t); } });

  beforeAll(async () => {
    cluster = await startTestCluster({ rbac: true });
    const roles = parseYamlDocs(readFileSync('config/examples/oncall-roles.yaml', 'utf8')) as KubeObject[];
    const bound = roles.map((o) => ({ ...o, metadata: { ...o.metadata, namespace: NAMESPACE },
      ...(o.kind === 'RoleBinding' ? { subjects: [{ kind: 'ServiceAccount', name: o.metadata?.name === 'mlops-oncall' ? 'alice' : 'bob', namespace: NAMESPACE }] } : {}) }));
    await cluster.emulator.applyManifests(bound);
    for (const [who, sa] of [['oncall', 'alice'], ['viewer', 'bob']] as const) {
      const token = cluster.emulator.issueServiceAccountToken(NAMESPACE, sa);
      kubeconfigs[who] = join(cluster.dir, `kubeconfig-${who}`);
      await cluster.emulator.writeKubeconfig(kubeconfigs[who], { token, namespace: NAMESPACE });
    }
  });
  afterAll(async () => { await cluster.close(); });

  test('on-call pauses, pins, resumes and unpins; the ConfigMap names them as the API server knows them', async () => {
    expect(await runControl('pause', { model: 'anomaly-detector', reason: 'INC-9' }, opts('oncall'))).toBe(0);
    const cm = await cluster.kube.get<KubeObject & { data: Record<string, string> }>(Resources.configMap, 'model-controls-anomaly-detector');
    expect(cm?.data).toMatchObject({ paused: 'true', pausedBy: `system:serviceaccount:${NAMESPACE}:alice`, reason: 'INC-9' });
    expect(cm?.metadata?.labels).toMatchObject({ 'mlops.dev/model': 'anomaly-detector', 'mlops.dev/paused': 'true', 'mlops.dev/pinned': 'false' });
    expect(await runControl('resume', { model: 'anomaly-detector' }, opts('oncall'))).toBe(0);
    expect((await cluster.kube.get<KubeObject & { data: Record<string, string> }>(Resources.configMap, 'model-controls-anomaly-detector'))?.data).toEqual({ paused: 'false' });
    // Pin with no RELEASE pins what the InferenceService serves (its release annotation).
    await cluster.kube.create(Resources.inferenceService, { apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService', metadata: { name: 'anomaly-detector' },
      spec: { predictor: { annotations: { 'mlops.dev/model-release': 'anomaly-detector-0123456789' }, model: { modelFormat: { name: 'sklearn' }, storageUri: 'pvc://model-storage-pvc/anomaly-detector' } } } });
    expect(await runControl('pin', { model: 'anomaly-detector' }, opts('oncall'))).toBe(0);
    expect((await cluster.kube.get<KubeObject & { data: Record<string, string> }>(Resources.configMap, 'model-controls-anomaly-detector'))?.data)
      .toMatchObject({ pinnedRelease: 'anomaly-detector-0123456789', pinnedBy: `system:serviceaccount:${NAMESPACE}:alice` });
    expect(await runControl('unpin', { model: 'anomaly-detector' }, opts('oncall'))).toBe(0);
    expect((await cluster.kube.get<KubeObject & { data: Record<string, string> }>(Resources.configMap, 'model-controls-anomaly-detector'))?.data).toEqual({ paused: 'false' });
  });

  test('the viewer may not pause (the API server answers 403: exit 1), nor roll back', async () => {
    errors.length = 0;
    expect(await runControl('pause', { model: 'predictive-analytics' }, opts('viewer'))).toBe(1);
    expect(await cluster.kube.get(Resources.configMap, 'model-controls-predictive-analytics')).toBeUndefined();
    // A rollback the records allow gets as far as the lock, which the viewer may not take.
    expect(await runRollback({ ...opts('viewer'), model: 'anomaly-detector', to: 'anomaly-detector-abcdef0123', force: true })).toBe(1);
    expect(errors.join('')).toMatch(/forbidden|403/i);
    expect(await cluster.kube.get(Resources.lease, 'model-lock-anomaly-detector')).toBeUndefined();
  });
});
