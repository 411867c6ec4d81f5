// Measurement 6: what one watchdog tick (deadlines, catch-up, the reconcile) costs the API server with a big
// catalog. The watchdog is served over HTTP against the emulator; the world is written straight into the store:
// `models` catalog models, each with its InferenceService and one ready predictor pod and one finished run (so no
// catch-up is due), and `unfinished` runs spread over every non-terminal phase with what each phase has in flight
// (the NVJ while training, the Job while copying, gating or promoting, the lock Lease). One PingSource tick is
// posted; the emulator's request log gives the reads (get and list pages) and writes it made.
import { CloudEvent } from 'cloudevents';
import { step as watchdog } from '../functions/watchdog/index.ts';
import { createDeps } from '../runtime/deps.ts';
import { serveStep } from '../runtime/faas.ts';
import { KSERVE_ISVC_LABEL, Labels, MANAGER, lockNameFor, runNameFor } from '../runtime/labels.ts';
import { microTime } from '../runtime/lock.ts';
import { silentLogger } from '../runtime/logger.ts';
import { Resources } from '../runtime/resources.ts';
import { loadSettings } from '../runtime/settings.ts';
import { startBenchCluster, type BenchCluster } from './cluster.ts';
import { generateCatalog, modelName } from './drift.ts';
import { binaryMessage, post } from './http.ts';

export const UNFINISHED_PHASES = ['Pending', 'Training', 'Copying', 'Gating', 'Promoting', 'Verifying'] as const;
const JOB_OF: Partial<Record<(typeof UNFINISHED_PHASES)[number], string>> = { Copying: 'copy', Gating: 'gate', Promoting: 'promote' };

export interface ReconcileTickResult {
  models: number;
  unfinished: number;
  /** The tick's answer (204 when every action succeeded). */
  status: number;
  ms: number;
  reads: number;
  gets: number;
  /** List requests, one per page (client-node pages at 500). */
  lists: number;
  listsByResource: Record<string, number>;
  writes: number;
  /** Events the tick sent to the broker (reconcile pokes, catch-ups, run.failed), by type. */
  eventsSent: number;
  eventTypes: Record<string, number>;
}

const sel = (r: { group: string; version: string; plural: string }) => ({ group: r.group, version: r.version, resource: r.plural });

function populate(cluster: BenchCluster, models: number, unfinished: number, now: Date): void {
  const store = cluster.emulator.store;
  // Status is a subresource: written after the create, as the controllers do.
  const create = (r: { group: string; version: string; plural: string }, obj: Record<string, unknown>): void => {
    const { status, ...rest } = obj;
    const created = store.create(sel(r), rest);
    if (status !== undefined) store.updateStatus(sel(r), { ...created, status });
  };
  const ns = cluster.namespace;
  const managed = { [Labels.managedBy]: MANAGER };
  const iso = now.toISOString();
  for (let i = 0; i < models; i++) {
    const model = modelName(i);
    const release = `${model}-r0`;
    create(Resources.inferenceService, {
      apiVersion: Resources.inferenceService.apiVersion, kind: Resources.inferenceService.kind,
      metadata: { name: model, namespace: ns },
      spec: { predictor: { annotations: { 'mlops.dev/model-release': release }, model: { modelFormat: { name: 'sklearn' }, storageUri: `pvc://models/${model}` } } },
    });
    create(Resources.pod, {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `${model}-predictor-0`, namespace: ns, labels: { [KSERVE_ISVC_LABEL]: model }, annotations: { 'mlops.dev/model-release': release } },
      spec: { containers: [{ name: 'kserve-container', image: 'kserve/sklearnserver' }] },
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: iso }] },
    });
    const running = i < unfinished;
    const phase = running ? UNFINISHED_PHASES[i % UNFINISHED_PHASES.length] ?? 'Pending' : 'Succeeded';
    const run = runNameFor(model, running ? 'bench-unfinished' : 'bench-history');
    create(Resources.modelRun, {
      apiVersion: Resources.modelRun.apiVersion, kind: Resources.modelRun.kind,
      metadata: { name: run, namespace: ns, labels: { ...managed, [Labels.model]: model, [Labels.run]: run, [Labels.phase]: phase } },
      spec: { model, trigger: 'schedule', idempotencyKey: run, profile: 'cpu' },
      status: { phase, startedAt: iso, ...(running ? {} : { completedAt: iso }) },
    });
    if (!running) continue;
    create(Resources.lease, {
      apiVersion: Resources.lease.apiVersion, kind: Resources.lease.kind,
      metadata: { name: lockNameFor(model), namespace: ns, labels: { ...managed, [Labels.model]: model } },
      spec: { holderIdentity: run, leaseDurationSeconds: 86_400, acquireTime: microTime(now), renewTime: microTime(now) },
    });
    if (phase !== 'Pending') {
      create(Resources.notebookValidationJob, {
        apiVersion: Resources.notebookValidationJob.apiVersion, kind: Resources.notebookValidationJob.kind,
        metadata: { name: run, namespace: ns, labels: { ...managed, [Labels.model]: model, [Labels.run]: run } },
        spec: { notebook: { git: { url: 'https://example.com/nb.git', ref: 'main' }, path: 'train.ipynb' }, podConfig: { containerImage: 'quay.io/example/nb:1' } },
        status: phase === 'Training' ? { phase: 'Running' } : { phase: 'Succeeded', completionTime: iso },
      });
    }
    const job = JOB_OF[phase as keyof typeof JOB_OF];
    if (job) {
      create(Resources.job, {
        apiVersion: 'batch/v1', kind: 'Job',
        metadata: { name: `${run}-${job}`, namespace: ns, labels: { ...managed, [Labels.model]: model, [Labels.run]: run } },
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: job, image: 'registry.access.redhat.com/ubi9/python-311' }] } } },
        status: { active: 1, startTime: iso },
      });
    }
  }
}

/** One watchdog tick over `models` catalog models and `unfinished` runs in flight. */
export async function reconcileTick(root: string, opts: { models: number; unfinished: number }): Promise<ReconcileTickResult> {
  const { catalog } = generateCatalog(root, opts.models);
  const cluster = await startBenchCluster(root);
  const sent: string[] = [];
  // The broker stand-in: counts what the tick sends.
  const { createServer } = await import('node:http');
  const sink = createServer((req, res) => { req.resume(); req.on('end', () => { sent.push(String(req.headers['ce-type'])); res.statusCode = 202; res.end(); }); });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const address = sink.address();
  const sinkUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`;
  try {
    populate(cluster, opts.models, opts.unfinished, new Date());
    const settings = loadSettings({ FUNCTION: 'watchdog', NAMESPACE: cluster.namespace, KUBECONFIG: cluster.kubeconfigPath, K_SINK: sinkUrl, LOG_LEVEL: 'silent' });
    const running = await serveStep(watchdog, createDeps(settings, { catalog, kube: cluster.kube, logger: silentLogger() }), { port: 0 });
    try {
      const tick = new CloudEvent({ type: 'dev.knative.sources.ping', source: `/apis/v1/namespaces/${cluster.namespace}/pingsources/watchdog`, id: 'bench-tick', datacontenttype: 'application/json', data: { watchdog: true } });
      cluster.emulator.resetRequests();
      const started = performance.now();
      const message = binaryMessage(tick);
      const res = await post(running.url, message.headers, message.body);
      const ms = performance.now() - started;
      const requests = cluster.emulator.requests;
      const listsByResource: Record<string, number> = {};
      for (const r of requests) if (r.verb === 'list') listsByResource[r.resource] = (listsByResource[r.resource] ?? 0) + 1;
      const gets = requests.filter((r) => r.verb === 'get').length;
      const lists = requests.filter((r) => r.verb === 'list').length;
      return {
        models: opts.models, unfinished: opts.unfinished, status: res.status, ms,
        reads: gets + lists, gets, lists, listsByResource, writes: requests.length - gets - lists - requests.filter((r) => r.verb === 'watch').length,
        eventsSent: sent.length, eventTypes: Object.fromEntries([...new Set(sent)].map((t) => [t, sent.filter((x) => x === t).length])),
      };
    } finally {
      await running.close();
    }
  } finally {
    sink.closeAllConnections();
    await new Promise<void>((resolve) => sink.close(() => resolve()));
    await cluster.close();
  }
}
