// The Kubernetes side of the bench: the API emulator with our CRDs, a kubeconfig and a Kubernetes port, and the
// per-model lock held by a run so start-training answers on its skip path.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator, type Emulator } from '../dev/emulator/index.ts';
import { loadYamlDir } from '../dev/manifests.ts';
import { microTime } from '../runtime/lock.ts';
import { lockNameFor } from '../runtime/labels.ts';
import { createKubePort, type KubePort } from '../runtime/kube.ts';
import { Resources } from '../runtime/resources.ts';

export const BENCH_NAMESPACE = 'mlops-bench';

export interface BenchCluster {
  emulator: Emulator;
  kubeconfigPath: string;
  kube: KubePort;
  namespace: string;
  close(): Promise<void>;
}

export async function startBenchCluster(root: string): Promise<BenchCluster> {
  const emulator = await startEmulator({ rbac: false });
  await emulator.applyManifests([...(await loadYamlDir(join(root, 'config/crds'))), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: BENCH_NAMESPACE } }]);
  const dir = await mkdtemp(join(tmpdir(), 'mlops-bench-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  await emulator.writeKubeconfig(kubeconfigPath, { namespace: BENCH_NAMESPACE });
  const kube = createKubePort({ kubeconfigPath, namespace: BENCH_NAMESPACE });
  return {
    emulator, kubeconfigPath, kube, namespace: BENCH_NAMESPACE,
    async close() { await emulator.close(); await rm(dir, { recursive: true, force: true }); },
  };
}

/** A run holds `model`'s lock for a day: every training.requested for it is answered training.skipped. */
export function holdLock(cluster: BenchCluster, model: string, holder = `${model}-held-by-bench`): string {
  const now = new Date();
  cluster.emulator.store.create({ group: Resources.lease.group, version: Resources.lease.version, resource: Resources.lease.plural }, {
    apiVersion: Resources.lease.apiVersion, kind: Resources.lease.kind,
    metadata: { name: lockNameFor(model), namespace: cluster.namespace, labels: { 'mlops.dev/model': model } },
    spec: { holderIdentity: holder, leaseDurationSeconds: 86_400, acquireTime: microTime(now), renewTime: microTime(now) },
  });
  return holder;
}
