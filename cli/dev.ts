import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { formatRecord, type DeliveryRecord } from '../dev/broker/index.ts';
import { DEV_NAMESPACE, devLogger, startLocal } from '../dev/local.ts';
import { INTAKE_STEPS } from '../functions/registry.ts';
import type { ExpectedRun } from '../dev/sim/scenarios.ts';
import { loadCatalog, type Catalog } from '../runtime/catalog.ts';
import { shortenDeadlines } from '../dev/deadlines.ts';
import { Annotations, runNameFor } from '../runtime/labels.ts';
import { Resources, isTerminalPhase, type ModelRun } from '../runtime/resources.ts';
import { waitForSignal } from './signals.ts';
import { statusRows, statusTable } from './status.ts';
import { storageStatusLine } from './bootstrap.ts';
import { createKubePort } from '../runtime/kube.ts';
import type { ClusterProfile, KubeVersion } from '../dev/emulator/index.ts';
import { z } from 'zod';
import { checkInvariants, invariantInput, sendQueuedRequests, type ChaosOptions } from '../dev/chaos.ts';
import { DEFAULT_DRAIN_SECONDS, RolloutModes, type KServeRolloutOptions } from '../dev/sim/index.ts';
import type { ApiServerFaults } from '../dev/sources/index.ts';

const ONCE_TIMEOUT_MS = 180_000;
/** How often `mlops dev` runs the watchdog (the deployed PingSource ticks every minute). */
export const DEFAULT_TICK_SECONDS = 5;

/** What `mlops dev` emulates of KServe rollouts and of the ApiServerSource adapter (docs/verification.md). */
export interface FidelityOptions {
  rollout?: KServeRolloutOptions; apiServerFaults?: ApiServerFaults; chaos?: ChaosOptions;
  /** Every model queue-latest, and a second request per model while its first run is in flight (`--once` checks it ran). */
  queuedRequest?: boolean;
}

const nonNegative = (flag: string, max: number) => z.coerce.number({ error: `--${flag} must be a number` }).min(0, `--${flag} must be >= 0`).max(max, `--${flag} must be <= ${max}`);
const FidelityFlags = z.object({
  rollout: z.enum(RolloutModes, { error: '--rollout must be raw or serverless' }).default('raw'),
  'drain-seconds': nonNegative('drain-seconds', 3600).default(DEFAULT_DRAIN_SECONDS),
  // The model server needs a moment to load the model before its readiness probe passes.
  'ready-delay-seconds': nonNegative('ready-delay-seconds', 600).default(2),
  'restart-pod': z.boolean().optional(),
  'drop-events': nonNegative('drop-events', 100).optional(),
  coalesce: z.boolean().optional(),
  reorder: z.boolean().optional(),
  seed: z.coerce.number({ error: '--seed must be an integer' }).int('--seed must be an integer').optional(),
  'api-faults': nonNegative('api-faults', 90).optional(),
  'crash-rate': nonNegative('crash-rate', 90).optional(),
  'max-deliveries': z.coerce.number({ error: '--max-deliveries must be an integer' }).int('--max-deliveries must be an integer').min(1, '--max-deliveries must be >= 1').max(10, '--max-deliveries must be <= 10').optional(),
  'queued-request': z.boolean().optional(),
});
export type FidelityFlags = z.infer<typeof FidelityFlags>;

/** Validates the flags (a clear message for a bad value) and maps them onto startLocal's options. */
export function fidelityOptions(values: Record<string, unknown>): FidelityOptions {
  const parsed = FidelityFlags.safeParse(values);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => i.message).join('; '));
  const f = parsed.data;
  const chaosOn = f['api-faults'] || f['crash-rate'] || (f['max-deliveries'] ?? 1) > 1;
  const seed = f.seed ?? Math.floor(Math.random() * 2 ** 31);
  const chaos: ChaosOptions | undefined = chaosOn ? {
    seed,
    ...(f['api-faults'] ? { apiFaultsPercent: f['api-faults'] } : {}),
    ...(f['crash-rate'] ? { crashPercent: f['crash-rate'] } : {}),
    ...(f['max-deliveries'] ? { maxDeliveries: f['max-deliveries'] } : {}),
  } : undefined;
  const faults: ApiServerFaults = {
    ...(f['drop-events'] !== undefined ? { dropPercent: f['drop-events'] } : {}),
    ...(f.coalesce ? { coalesce: true } : {}),
    ...(f.reorder ? { reorder: true } : {}),
    // A seed is always chosen (and printed) when a knob is on, so the run can be repeated.
    ...(f['drop-events'] || f.coalesce || f.reorder || f.seed !== undefined ? { seed } : {}),
  };
  return {
    rollout: { rollout: f.rollout, drainSeconds: f['drain-seconds'], readyDelaySeconds: f['ready-delay-seconds'], ...(f['restart-pod'] ? { restartOnce: true } : {}) },
    ...(Object.keys(faults).length > 0 ? { apiServerFaults: faults } : {}),
    ...(chaos ? { chaos } : {}),
    ...(f['queued-request'] ? { queuedRequest: true } : {}),
  };
}

/** `mlops dev [--scenario NAME] [--once]`. */
export async function runDev(opts: {
  scenario: string; once: boolean; keepState?: boolean; tickSeconds?: number; profile?: ClusterProfile; kubeVersion?: KubeVersion; env: Readonly<Record<string, string | undefined>>;
} & FidelityOptions): Promise<number> {
  const print = (line: string): void => { process.stdout.write(`${line}\n`); };
  const notified = new Map<string, number>();
  const tickSeconds = opts.tickSeconds ?? DEFAULT_TICK_SECONDS;
  const shortened = shortenDeadlines(loadCatalog(opts.env.MODEL_CATALOG ?? 'config/models.yaml'));
  const { summary } = shortened;
  const catalog: Catalog = opts.queuedRequest ? { ...shortened.catalog, models: shortened.catalog.models.map((m) => ({ ...m, concurrency: 'queue-latest' as const })) } : shortened.catalog;
  print(`deadlines shortened for dev: ${summary}; watchdog tick every ${tickSeconds}s`);
  // Function logs go to stderr at error level by default; the timeline is the readable output.
  const logLevel = opts.env.LOG_LEVEL ?? 'error';
  // `day2` (docs/day2.md): the healthy system, then the scripted pause / pin / rollback walk-through (dev/day2.ts).
  const day2 = opts.scenario === 'day2';
  const local = await startLocal({
    catalog, scenario: day2 ? 'happy' : opts.scenario, env: opts.env, tickSeconds,
    profile: opts.profile ?? 'openshift',
    ...(opts.kubeVersion ? { kubeVersion: opts.kubeVersion } : {}),
    ...(opts.rollout ? { rollout: opts.rollout } : {}),
    ...(opts.apiServerFaults ? { apiServerFaults: opts.apiServerFaults } : {}),
    ...(opts.chaos ? { chaos: opts.chaos } : {}),
    logger: devLogger(logLevel, {}),
    onRecord: (r) => { if (opts.env.MLOPS_VERBOSE || worthShowing(r)) print(formatRecord(r)); },
    onNotification: (channel, summary) => {
      const run = /\(([a-z0-9-]+)\)/.exec(summary)?.[1];
      if (run) notified.set(run, (notified.get(run) ?? 0) + 1);
      print(`${new Date().toISOString().slice(11, 23)} notify ${channel}: ${summary}`);
    },
  });
  // The state folder (kubeconfigs, model files) goes with the run unless asked to keep it.
  const closeLocal = async (): Promise<void> => {
    await local.close();
    if (!opts.keepState) await rm(local.stateDir, { recursive: true, force: true });
    else print(`state kept: ${local.stateDir}`);
  };
  print(`kubeconfig: ${local.kubeconfigPath}`);
  print(`broker: ${local.broker.url}`);
  print(`s3: ${local.s3.endpoint}/${local.bucket} (credentials: ${join(local.stateDir, 's3.env')})`);
  for (const step of INTAKE_STEPS) print(`intake ${step}: ${local.steps[step].url}`);
  print(`scenario: ${opts.scenario}; cluster: ${local.emulator.profile} ${local.emulator.kubeVersion}; state: ${local.stateDir}`);
  if (opts.rollout) print(`rollout: ${opts.rollout.rollout ?? 'raw'}, drain ${opts.rollout.drainSeconds ?? DEFAULT_DRAIN_SECONDS} s, ready delay ${opts.rollout.readyDelaySeconds ?? 0} s${opts.rollout.restartOnce ? ', one predictor pod restarts' : ''}`);
  if (opts.apiServerFaults) print(`apiserver source faults: ${JSON.stringify(opts.apiServerFaults)}`);
  if (opts.chaos) print(`chaos: ${JSON.stringify(opts.chaos)}`);

  if (!opts.once) {
    print('serving; Ctrl-C to stop');
    await waitForSignal();
    await closeLocal();
    return 0;
  }

  if (day2) {
    const model = catalog.models.find((m) => m.enabled && m.profile === 'cpu')?.name ?? catalog.models[0]?.name ?? '';
    const { runDay2 } = await import('../dev/day2.ts');
    const checks = await runDay2(local, catalog, { model, print });
    const rows = await statusRows(createKubePort({ kubeconfigPath: local.kubeconfigPath, namespace: DEV_NAMESPACE }), catalog.models, new Date());
    print('');
    print('$ mlops status');
    process.stdout.write(statusTable(rows));
    print('');
    print(`result: ${checks.filter((c) => c.ok).length}/${checks.length} day-2 checks ok`);
    await closeLocal();
    return checks.every((c) => c.ok) ? 0 : 1;
  }

  const models = catalog.models.filter((m) => m.enabled && m.schedule).map((m) => m.name);
  const servedBefore = new Map(models.map((m) => [m, servedRelease(local, m, catalog)]));
  const uriBefore = new Map(models.map((m) => [m, servedStorageUri(local, m, catalog)]));
  for (const model of models) await local.pings.fireNow(`${DEV_NAMESPACE}/schedule-${model}`);
  const listRuns = (): ModelRun[] => local.emulator.store.list({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun' }, { namespace: DEV_NAMESPACE }) as unknown as ModelRun[];
  const queued = opts.queuedRequest ? await sendQueuedRequests({ models, runs: listRuns, send: (e) => local.broker.send(e), runNameOf: runNameFor }) : new Map<string, string>();
  for (const [model, run] of queued) print(`queued: a second request for ${model} while its first run is in flight (must become ${run})`);
  const deadline = Date.now() + ONCE_TIMEOUT_MS * (opts.queuedRequest ? 2 : 1);
  let finished: Map<string, ModelRun> = new Map();
  while (Date.now() < deadline) {
    const all = listRuns();
    finished = terminalRuns(all);
    const done = (m: string): number => all.filter((r) => r.spec.model === m && isTerminalPhase(r.status?.phase)).length;
    if (models.every((m) => done(m) >= (queued.has(m) ? 2 : 1))) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await local.broker.idle(5_000).catch(() => undefined);
  // What `mlops status` shows for this cluster (same code, through the Kubernetes API).
  const kube = createKubePort({ kubeconfigPath: local.kubeconfigPath, namespace: DEV_NAMESPACE });
  const rows = await statusRows(kube, catalog.models, new Date());
  print('');
  print('$ mlops status');
  process.stdout.write(statusTable(rows));
  const storage = await storageStatusLine(kube);
  if (storage) process.stdout.write(storage);
  let ok = true;
  print('');
  print('result:');
  for (const model of models) {
    const run = finished.get(model);
    const phase = run?.status?.phase ?? '(no terminal run)';
    const want = local.expected[model]?.phase;
    const missing = [
      ...missingExpectations(local.expected[model], run, servedBefore.get(model), servedRelease(local, model, catalog)),
      ...missingStorageUri(local.expected[model], run, uriBefore.get(model), servedStorageUri(local, model, catalog)),
    ];
    const good = run !== undefined && (want === undefined || want === phase) && missing.length === 0;
    ok &&= good;
    print(`  ${model}: ${run?.metadata.name ?? '-'} ${phase}${want ? ` (expected ${want})` : ''}${run?.status?.gate?.simulated ? ' [gate report simulated: sklearn not available]' : ''} ${good ? 'ok' : 'FAIL'}${missing.length ? ` (${missing.join('; ')})` : ''}`);
  }
  // What every run must keep, chaos or not (docs/run-lifecycle.md).
  const problems = checkInvariants(await invariantInput(createKubePort({ kubeconfigPath: local.kubeconfigPath, namespace: DEV_NAMESPACE }), {
    expected: Object.fromEntries(models.map((m) => [m, local.expected[m]])),
    isvcOf: new Map(catalog.models.filter((m) => models.includes(m.name)).map((m) => [m.name, m.inferenceService])),
    seeded: new Set(models.map((m) => `${m}-seed`)),
    notifications: notified,
    queued,
  }));
  print('');
  const injected = local.emulator.requests.filter((r) => r.status === 0 || r.status >= 500 || r.status === 409).length;
  print(`invariants: ${problems.length === 0 ? 'ok' : `${problems.length} violated`} (steps stopped dead: ${local.crashes.crashes}; API answers 5xx/409/reset: ${injected}; notifications: ${[...notified.values()].reduce((a, b) => a + b, 0)})`);
  for (const p of problems) print(`  FAIL ${p}`);
  // What the functions cost the API server (the emulator's request log; their ServiceAccounts only).
  const prefix = `system:serviceaccount:${DEV_NAMESPACE}:mlops-`;
  const byStep = new Map<string, number>();
  for (const r of local.emulator.requests) if (r.user.startsWith(prefix)) byStep.set(r.user.slice(prefix.length), (byStep.get(r.user.slice(prefix.length)) ?? 0) + 1);
  const calls = [...byStep.values()].reduce((a, b) => a + b, 0);
  print(`api calls by the functions: ${calls} (${[...byStep].sort((a, b) => b[1] - a[1]).map(([s, n]) => `${s} ${n}`).join(', ')})`);
  ok &&= problems.length === 0;
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

/** The InferenceService's `spec.predictor.model.storageUri`. */
function servedStorageUri(local: Awaited<ReturnType<typeof startLocal>>, model: string, catalog: Catalog): string | undefined {
  const name = catalog.models.find((m) => m.name === model)?.inferenceService ?? model;
  const isvc = local.emulator.store.get({ apiVersion: Resources.inferenceService.apiVersion, kind: Resources.inferenceService.kind }, { name, namespace: DEV_NAMESPACE }) as
    { spec?: { predictor?: { model?: { storageUri?: string } } } } | undefined;
  return isvc?.spec?.predictor?.model?.storageUri;
}

/** A bucket model (docs/storage.md): its storageUri names the run's release folder, or (rolled back) the one before. */
function missingStorageUri(want: ExpectedRun | undefined, run: ModelRun | undefined, before: string | undefined, after: string | undefined): string[] {
  if (!want?.storageUri || !run) return [];
  if (want.storageUri === 'previous') return after === before ? [] : [`storageUri ${after ?? 'none'} is not the one served before the run (${before ?? 'none'})`];
  const release = run.status?.release?.promoted ?? run.metadata.name ?? '';
  return after?.startsWith('s3://') && after.endsWith(`/releases/${release}/`) ? [] : [`storageUri ${after ?? 'none'} does not name the release ${release} in the bucket`];
}

/** What a scenario expects beyond the phase: the gate checks that failed, the release still served. */
function missingExpectations(want: ExpectedRun | undefined, run: ModelRun | undefined, before: string | undefined, after: string | undefined): string[] {
  const missing: string[] = [];
  const failed = new Set((run?.status?.gate?.checks ?? []).filter((c) => !c.ok).map((c) => c.name));
  for (const name of want?.failedChecks ?? []) if (!failed.has(name)) missing.push(`gate check ${name} did not fail`);
  if (want?.keepsServed && (before === undefined || before !== after)) missing.push(`served release ${before ?? 'none'} became ${after ?? 'none'}`);
  const checked = run?.status?.rollback?.verified;
  if (want?.rollback && checked !== (want.rollback === 'verified')) missing.push(`the restored release was ${checked === undefined ? 'never checked' : checked ? 'verified' : 'not verified'}, want ${want.rollback}`);
  return missing;
}
