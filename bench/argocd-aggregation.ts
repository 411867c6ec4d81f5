import { parseCatalog } from '../runtime/catalog.ts';
import { createDeps } from '../runtime/deps.ts';
import { silentLogger } from '../runtime/logger.ts';
import { loadSettings } from '../runtime/settings.ts';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NAMESPACE, startTestCluster } from '../test/kit.ts';
import { updateApplicationStatus } from '../functions/argocd-sync/effects.ts';

// Measurement 5: argocd-sync's Application status over N NVJs, through its real effect, the real Kubernetes port
// and the emulator over HTTP. Objects are written straight into the emulator's store (fast set-up); only the
// aggregation is timed. Moved here from functions/argocd-sync (product code carries no bench harness).

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const NVJ = { group: 'mlops.mlops.dev', version: 'v1alpha1', resource: 'notebookvalidationjobs' };
const APP = { group: 'argoproj.io', version: 'v1alpha1', resource: 'applications' };
const PHASES = ['Succeeded', 'Succeeded', 'Succeeded', 'Failed', 'Running'] as const;

export interface AggregationFigures {
  n: number;
  /** Wall time of one full recompute (Application read, paginated lists, summary, Application patch). */
  ms: number;
  /** NVJ list requests the recompute made: ceil(n / 500) when pagination works. */
  listCalls: number;
  rssMb: number;
}

export async function benchAggregation(n: number): Promise<AggregationFigures> {
  const cluster = await startTestCluster();
  try {
    const store = cluster.emulator.store;
    await cluster.emulator.applyManifests([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'argocd' } }]);
    store.create(APP, {
      apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', metadata: { name: 'bench', namespace: 'argocd' },
      spec: { project: 'default', source: { repoURL: 'https://example.com/r.git', targetRevision: 'main' }, destination: { server: 'https://kubernetes.default.svc', namespace: NAMESPACE } },
    });
    for (let i = 0; i < n; i++) {
      const name = `nb-${String(i).padStart(6, '0')}`;
      const created = store.create(NVJ, {
        apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob',
        metadata: { name, namespace: NAMESPACE, labels: { 'app.kubernetes.io/part-of': 'bench' } },
        spec: { notebook: { git: { url: 'https://example.com/nb.git', ref: 'main' }, path: 'train.ipynb' }, podConfig: { containerImage: 'quay.io/example/nb:1' } },
      });
      const phase = PHASES[i % PHASES.length] ?? 'Running';
      store.updateStatus(NVJ, { ...created, status: { phase, ...(phase === 'Running' ? {} : { completionTime: '2026-11-22T10:00:00Z' }) } });
    }
    const settings = loadSettings({ FUNCTION: 'argocd-sync', NAMESPACE, KUBECONFIG: cluster.kubeconfigPath, LOG_LEVEL: 'silent' });
    const deps = createDeps(settings, { kube: cluster.kube, logger: silentLogger(), catalog: parseCatalog(readFileSync(join(root, 'config/models.yaml'), 'utf8')) });
    cluster.emulator.resetRequests();
    const started = performance.now();
    const result = await updateApplicationStatus(deps, { kind: 'app-status', app: 'bench', namespace: 'argocd', nvjNamespace: NAMESPACE, force: true }, new Date());
    const ms = performance.now() - started;
    if (!result.recomputed) throw new Error('the aggregation did not run');
    const listCalls = cluster.emulator.requests.filter((r) => r.verb === 'list' && r.resource === 'notebookvalidationjobs').length;
    return { n: result.total ?? 0, ms: Math.round(ms * 10) / 10, listCalls, rssMb: Math.round(process.memoryUsage().rss / 1048576) };
  } finally {
    await cluster.close();
  }
}
