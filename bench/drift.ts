// Measurement 4: a storm of drift alerts. drift-intake and start-training served over HTTP, the local broker
// between them (Trigger: training.requested → start-training), 1,000 Alertmanager webhooks fired at once
// (100 in flight) over 20 models; every model must get exactly one run, every other request an explicit skip.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startBroker, type Broker } from '../dev/broker/index.ts';
import { EventTypes } from '../events/index.ts';
import { step as driftIntake } from '../functions/drift-intake/index.ts';
import { step as startTraining } from '../functions/start-training/index.ts';
import { parseCatalog, type Catalog } from '../runtime/catalog.ts';
import { createDeps } from '../runtime/deps.ts';
import { serveStep, type RunningStep } from '../runtime/faas.ts';
import { silentLogger } from '../runtime/logger.ts';
import { loadSettings } from '../runtime/settings.ts';
import type { StepDefinition } from '../runtime/step.ts';
import { startBenchCluster, type BenchCluster } from './cluster.ts';
import { post } from './http.ts';
import { seededRandom } from './stats.ts';

const TOKEN = 'bench-drift-token';
const TEMPLATE_MODEL = 'anomaly-detector';

export const modelName = (i: number): string => `model-${String(i + 1).padStart(2, '0')}`;

/** config/models.yaml with its models replaced by `count` copies of anomaly-detector named model-01, model-02, ... */
export function generateCatalog(root: string, count: number): { catalog: Catalog; yaml: string } {
  const doc = parse(readFileSync(join(root, 'config/models.yaml'), 'utf8')) as { models: Array<Record<string, unknown>> };
  const template = doc.models.find((m) => m.name === TEMPLATE_MODEL);
  if (!template) throw new Error(`config/models.yaml has no ${TEMPLATE_MODEL} to copy`);
  doc.models = Array.from({ length: count }, (_, i) => ({ ...structuredClone(template), name: modelName(i), inferenceService: modelName(i) }));
  const yaml = stringify(doc);
  return { catalog: parseCatalog(yaml, 'bench catalog'), yaml };
}

export function alertWebhook(model: string, fingerprint: string, startsAt: string): string {
  return JSON.stringify({
    version: '4', groupKey: `{}/{alertname="ModelDriftDetected"}:{model="${model}"}`, truncatedAlerts: 0, status: 'firing', receiver: 'model-lifecycle',
    groupLabels: { alertname: 'ModelDriftDetected' }, commonLabels: { alertname: 'ModelDriftDetected', model }, commonAnnotations: {}, externalURL: 'http://alertmanager:9093',
    alerts: [{
      status: 'firing', labels: { alertname: 'ModelDriftDetected', model, severity: 'warning' }, annotations: { summary: 'input drift' },
      startsAt, endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint,
    }],
  });
}

/** Every model at least once (when alerts ≥ models), the rest random; shuffled with a fixed seed. */
export function assignModels(alerts: number, models: number, seed: number): string[] {
  const random = seededRandom(seed);
  const out = Array.from({ length: alerts }, (_, i) => (i < models ? modelName(i) : modelName(Math.floor(random() * models))));
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as string, out[i] as string];
  }
  return out;
}

export interface DriftStormResult {
  alerts: number;
  models: number;
  clientConcurrency: number;
  /** Webhooks answered 200 with one accepted request each. */
  webhooksAccepted: number;
  modelRuns: number;
  notebookValidationJobs: number;
  /** Models with exactly one ModelRun and one NVJ. */
  modelsWithOneRun: number;
  started: number;
  skipped: number;
  /** Broker deliveries answered with a retryable status (lock races settled by redelivery). */
  brokerRetries: number;
  deadLettered: number;
  apiCalls: number;
  /** First webhook sent → every webhook answered. */
  intakeMs: number;
  /** First webhook sent → broker idle (every request decided). */
  wallMs: number;
}

async function serve(step: StepDefinition, cluster: BenchCluster, catalog: Catalog, sinkUrl: string): Promise<RunningStep> {
  const settings = loadSettings({ FUNCTION: step.name, NAMESPACE: cluster.namespace, KUBECONFIG: cluster.kubeconfigPath, K_SINK: sinkUrl, LOG_LEVEL: 'silent', DRIFT_INTAKE_TOKEN: TOKEN });
  return serveStep(step, createDeps(settings, { catalog, kube: cluster.kube, logger: silentLogger() }), { port: 0 });
}

export async function driftStorm(opts: { root: string; alerts: number; models: number; concurrency?: number; seed?: number }): Promise<DriftStormResult> {
  const concurrency = opts.concurrency ?? 100;
  const { catalog } = generateCatalog(opts.root, opts.models);
  const cluster = await startBenchCluster(opts.root);
  const urls = new Map<string, string>();
  let broker: Broker | undefined;
  const running: RunningStep[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  try {
    broker = await startBroker({
      triggers: [{
        apiVersion: 'eventing.knative.dev/v1', kind: 'Trigger', metadata: { name: 'start-training-requested' },
        spec: { broker: 'default', filter: { attributes: { type: EventTypes.trainingRequested } }, subscriber: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'start-training' } } },
      }],
      resolve: (ref) => urls.get(ref.name),
      timeScale: 0.01,
    });
    const training = await serve(startTraining, cluster, catalog, broker.url);
    running.push(training);
    urls.set('start-training', training.url);
    const intake = await serve(driftIntake, cluster, catalog, broker.url);
    running.push(intake);

    const assigned = assignModels(opts.alerts, opts.models, opts.seed ?? 42);
    const startsAt = new Date().toISOString();
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };
    cluster.emulator.resetRequests();
    let next = 0;
    let accepted = 0;
    const failures: string[] = [];
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      while (next < assigned.length) {
        const i = next++;
        const answer = await post(intake.url, headers, alertWebhook(assigned[i] as string, `bench-fp-${i.toString(16).padStart(8, '0')}`, startsAt), agent);
        const body = answer.status === 200 ? (JSON.parse(answer.body) as { accepted?: number }) : undefined;
        if (body?.accepted === 1) accepted += 1;
        else failures.push(`${answer.status} ${answer.body.slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, assigned.length) }, worker));
    const intakeMs = performance.now() - t0;
    await broker.idle(120_000);
    const wallMs = performance.now() - t0;
    if (failures.length > 0) throw new Error(`${failures.length} webhooks were not accepted, first: ${failures[0]}`);

    const runs = cluster.emulator.store.list({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun' }, { namespace: cluster.namespace }) as unknown as Array<{ spec: { model: string } }>;
    const nvjs = cluster.emulator.store.list({ apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' }, { namespace: cluster.namespace }) as unknown as Array<{ metadata: { labels?: Record<string, string> } }>;
    const perModel = new Map<string, { runs: number; nvjs: number }>();
    for (const r of runs) { const e = perModel.get(r.spec.model) ?? { runs: 0, nvjs: 0 }; e.runs += 1; perModel.set(r.spec.model, e); }
    for (const n of nvjs) { const m = n.metadata.labels?.['mlops.dev/model'] ?? '?'; const e = perModel.get(m) ?? { runs: 0, nvjs: 0 }; e.nvjs += 1; perModel.set(m, e); }
    const delivered = broker.records.filter((r) => r.outcome === 'delivered');
    return {
      alerts: opts.alerts, models: opts.models, clientConcurrency: concurrency, webhooksAccepted: accepted,
      modelRuns: runs.length, notebookValidationJobs: nvjs.length,
      modelsWithOneRun: [...perModel.values()].filter((e) => e.runs === 1 && e.nvjs === 1).length,
      started: delivered.filter((r) => r.reply?.type === EventTypes.trainingStarted).length,
      skipped: delivered.filter((r) => r.reply?.type === EventTypes.trainingSkipped).length,
      brokerRetries: broker.records.filter((r) => r.outcome === 'retry').length,
      deadLettered: broker.records.filter((r) => r.outcome === 'dead-lettered').length,
      apiCalls: cluster.emulator.requests.length,
      intakeMs, wallMs,
    };
  } finally {
    agent.destroy();
    for (const r of running) await r.close();
    await broker?.close();
    await cluster.close();
  }
}
