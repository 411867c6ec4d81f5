import { rm } from 'node:fs/promises';
import { formatRecord, type DeliveryRecord } from '../dev/broker/index.ts';
import { DEV_NAMESPACE, devLogger, startLocal } from '../dev/local.ts';
import type { ExpectedRun } from '../dev/sim/scenarios.ts';
import { loadCatalog, type Catalog } from '../runtime/catalog.ts';
import { Annotations } from '../runtime/labels.ts';
import { Resources, isTerminalPhase, type ModelRun } from '../runtime/resources.ts';
import { waitForSignal } from './signals.ts';
import { statusRows, statusTable } from './status.ts';
import { createKubePort } from '../runtime/kube.ts';

const ONCE_TIMEOUT_MS = 180_000;

/** `mlops dev [--scenario NAME] [--once]`. */
export async function runDev(opts: { scenario: string; once: boolean; keepState?: boolean; env: Readonly<Record<string, string | undefined>> }): Promise<number> {
  const catalog = loadCatalog(opts.env.MODEL_CATALOG ?? 'config/models.yaml');
  const print = (line: string): void => { process.stdout.write(`${line}\n`); };
  // Function logs go to stderr at error level by default; the timeline is the readable output.
  const logLevel = opts.env.LOG_LEVEL ?? 'error';
  const local = await startLocal({
    catalog, scenario: opts.scenario, env: opts.env,
    logger: devLogger(logLevel, {}),
    onRecord: (r) => { if (opts.env.MLOPS_VERBOSE || worthShowing(r)) print(formatRecord(r)); },
    onNotification: (channel, summary) => { print(`${new Date().toISOString().slice(11, 23)} notify ${channel}: ${summary}`); },
  });
  // The state folder (kubeconfigs, model files) goes with the run unless asked to keep it.
  const closeLocal = async (): Promise<void> => {
    await local.close();
    if (!opts.keepState) await rm(local.stateDir, { recursive: true, force: true });
    else print(`state kept: ${local.stateDir}`);
  };
  print(`kubeconfig: ${local.kubeconfigPath}`);
  print(`broker: ${local.broker.url}`);
  for (const step of ['drift-intake', 'git-intake'] as const) print(`intake ${step}: ${local.steps[step].url}`);
  print(`scenario: ${opts.scenario}; state: ${local.stateDir}`);

  if (!opts.once) {
    print('serving; Ctrl-C to stop');
    await waitForSignal();
    await closeLocal();
    return 0;
  }

  const models = catalog.models.filter((m) => m.enabled && m.schedule).map((m) => m.name);
  const servedBefore = new Map(models.map((m) => [m, servedRelease(local, m, catalog)]));
  for (const model of models) await local.pings.fireNow(`${DEV_NAMESPACE}/schedule-${model}`);
  const deadline = Date.now() + ONCE_TIMEOUT_MS;
  let finished: Map<string, ModelRun> = new Map();
  while (Date.now() < deadline) {
    finished = terminalRuns(local.emulator.store.list({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun' }, { namespace: DEV_NAMESPACE }) as unknown as ModelRun[]);
    if (models.every((m) => finished.has(m))) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await local.broker.idle(5_000).catch(() => undefined);
  // What `mlops status` shows for this cluster (same code, through the Kubernetes API).
  const rows = await statusRows(createKubePort({ kubeconfigPath: local.kubeconfigPath, namespace: DEV_NAMESPACE }), catalog.models, new Date());
  print('');
  print('$ mlops status');
  process.stdout.write(statusTable(rows));
  let ok = true;
  print('');
  print('result:');
  for (const model of models) {
    const run = finished.get(model);
    const phase = run?.status?.phase ?? '(no terminal run)';
    const want = local.expected[model]?.phase;
    const missing = missingExpectations(local.expected[model], run, servedBefore.get(model), servedRelease(local, model, catalog));
    const good = run !== undefined && (want === undefined || want === phase) && missing.length === 0;
    ok &&= good;
    print(`  ${model}: ${run?.metadata.name ?? '-'} ${phase}${want ? ` (expected ${want})` : ''}${run?.status?.gate?.simulated ? ' [gate report simulated: sklearn not available]' : ''} ${good ? 'ok' : 'FAIL'}${missing.length ? ` (${missing.join('; ')})` : ''}`);
  }
  await closeLocal();
  return ok ? 0 : 1;
}

/** The readable timeline: our events and every reply or failure; cluster updates that changed nothing are noise. */
function worthShowing(r: DeliveryRecord): boolean {
  if (r.outcome !== 'delivered') return true;
  if (r.reply) return true;
  return !r.eventType.startsWith('dev.knative.apiserver.');
}

function terminalRuns(runs: ModelRun[]): Map<string, ModelRun> {
  const out = new Map<string, ModelRun>();
  for (const r of runs) if (isTerminalPhase(r.status?.phase)) out.set(r.spec.model, r);
  return out;
}


/** The release the model's InferenceService is pointed at (the restart annotation), if any. */
function servedRelease(local: Awaited<ReturnType<typeof startLocal>>, model: string, catalog: Catalog): string | undefined {
  const name = catalog.models.find((m) => m.name === model)?.inferenceService ?? model;
  const isvc = local.emulator.store.get({ apiVersion: Resources.inferenceService.apiVersion, kind: Resources.inferenceService.kind }, { name, namespace: DEV_NAMESPACE }) as
    { spec?: { predictor?: { annotations?: Record<string, string> } } } | undefined;
  return isvc?.spec?.predictor?.annotations?.[Annotations.modelRelease];
}

/** What a scenario expects beyond the phase: the gate checks that failed, the release still served. */
function missingExpectations(want: ExpectedRun | undefined, run: ModelRun | undefined, before: string | undefined, after: string | undefined): string[] {
  const missing: string[] = [];
  const failed = new Set((run?.status?.gate?.checks ?? []).filter((c) => !c.ok).map((c) => c.name));
  for (const name of want?.failedChecks ?? []) if (!failed.has(name)) missing.push(`gate check ${name} did not fail`);
  if (want?.keepsServed && (before === undefined || before !== after)) missing.push(`served release ${before ?? 'none'} became ${after ?? 'none'}`);
  return missing;
}
