// Measurement 3: one full run per scenario through `startLocal` (emulator with RBAC, broker, every function,
// sources, simulated controllers at zero delay): the API calls the functions made, per step, and the chain's
// wall time from the first event to the run's terminal phase.
import { join } from 'node:path';
import { DEV_NAMESPACE } from '../dev/local.ts';
import { STEP_NAMES } from '../functions/registry.ts';
import { loadCatalog } from '../runtime/catalog.ts';
import { KSERVE_ISVC_LABEL } from '../runtime/labels.ts';
import { isTerminalPhase, type ModelRun } from '../runtime/resources.ts';
import type { RunTrace, TracedPod } from './cost.ts';
import { sleep } from './http.ts';

export const SCENARIOS = ['happy-cpu', 'happy-gpu', 'gate-reject', 'verify-fail-rollback', 'training-fail'] as const;
export const SCENARIO_MODEL = 'anomaly-detector';
/** The old design: a Tekton task pod per step (train, health-check, restart, test), about 5 s of pod overhead each. */
export const TEKTON_TASKS = 4;
export const TEKTON_POD_OVERHEAD_MS = 5_000;

const SA_PREFIX = `system:serviceaccount:${DEV_NAMESPACE}:mlops-`;

export interface ScenarioRunResult {
  scenario: string;
  model: string;
  phase: string;
  expectedPhase: string | undefined;
  /** First event (the schedule tick) → the ModelRun's terminal phase. */
  wallMs: number;
  /** Sum of the functions' answer times over every broker delivery of the run (their own work). */
  functionMs: number;
  functionMsByStep: Record<string, number>;
  deliveries: number;
  /** Our own event types delivered to a Trigger, in the order the broker first saw them. */
  events: string[];
  /** API calls by function ServiceAccounts, total and per step. */
  apiCalls: number;
  apiCallsByStep: Record<string, number>;
  /** Calls by the ApiServerSource's ServiceAccount (lists and watches; not the functions'). */
  sourceApiCalls: number;
  /** Gate report marked simulated (no sklearn on this machine). */
  gateSimulated: boolean;
  /** What the run really did, for the real-cluster cost model (bench/cost.ts). */
  trace: RunTrace;
}

/** Waits until neither the broker nor the emulator saw anything new for two rounds. */
async function settle(local: { broker: { records: unknown[]; idle(ms: number): Promise<unknown> }; emulator: { requests: unknown[] } }): Promise<void> {
  for (let quiet = 0, i = 0; quiet < 2 && i < 50; i++) {
    const seen = local.broker.records.length + local.emulator.requests.length;
    await local.broker.idle(30_000).catch(() => undefined);
    await sleep(150);
    quiet = seen === local.broker.records.length + local.emulator.requests.length ? quiet + 1 : 0;
  }
}

export async function scenarioRun(opts: { root: string; scenario: string; timeoutMs?: number }): Promise<ScenarioRunResult> {
  // Loaded on demand: startLocal needs dev/sim, which a partial checkout may lack (the bench then says so).
  const { startLocal } = await import('../dev/local.ts');
  const catalog = loadCatalog(join(opts.root, 'config/models.yaml'));
  const local = await startLocal({ catalog, scenario: opts.scenario, env: { LOG_LEVEL: 'silent' }, delayMs: 0, rbac: true });
  try {
    const allRuns = (): ModelRun[] => local.emulator.store.list({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun' }, { namespace: DEV_NAMESPACE }) as unknown as ModelRun[];
    // No scheduled ticks during the measurement (the watchdog's minute tick is a fixed background cost, not the
    // run's); fireNow still fires the one schedule we want.
    local.pings.stop();
    // The start-up's own deliveries (the first predictor pods' events) settle before the measurement starts. A
    // minute tick that fired while the local cluster started may have caught up missed schedule slots: those runs
    // end first and are not the one measured.
    const earlier = new Set<string>();
    for (let i = 0; ; i++) {
      await settle(local);
      const seen = allRuns();
      for (const r of seen) earlier.add(r.metadata.name ?? '');
      if (seen.every((r) => isTerminalPhase(r.status?.phase))) break;
      if (i >= 600) throw new Error(`${opts.scenario}: runs started before the measurement did not end`);
      await sleep(200);
    }
    const runs = (): ModelRun[] => allRuns().filter((r) => r.spec.model === SCENARIO_MODEL && !earlier.has(r.metadata.name ?? ''));
    const recordsFrom = local.broker.records.length;
    const requestsFrom = local.emulator.requests.length;
    const t0 = performance.now();
    const wall0 = Date.now();
    // Same clock and resolution as the broker's delivery records (ISO, milliseconds), so their order holds.
    const since = (): number => Date.now() - wall0;
    // Pods the simulated Job controller and KServe start, and when training ran, from the store's change feed.
    const pods = new Map<string, TracedPod>();
    const training: { startMs?: number; endMs?: number; succeeded?: boolean } = {};
    let concludedMs: number | undefined;
    const unwatch = local.emulator.store.onEvent((e) => {
      const o = e.object as { metadata: { name: string; labels?: Record<string, string> }; spec?: { model?: string }; status?: { phase?: string } };
      const phase = o.status?.phase;
      if (e.storageKey === '/pods') {
        const labels = o.metadata.labels ?? {};
        const kind = labels['job-name'] !== undefined || labels['batch.kubernetes.io/job-name'] !== undefined ? 'job' : labels[KSERVE_ISVC_LABEL] !== undefined ? 'predictor' : undefined;
        if (!kind) return;
        if (e.type === 'ADDED' && !pods.has(o.metadata.name)) pods.set(o.metadata.name, { kind, name: o.metadata.name, startMs: since() });
        const p = pods.get(o.metadata.name);
        if (p && p.endMs === undefined && (phase === 'Succeeded' || phase === 'Failed')) p.endMs = since();
      } else if (earlier.has(o.metadata.name)) {
        // An NVJ or ModelRun of a run that ended before the measurement (NVJs are named as their run).
      } else if (e.storageKey === 'mlops.mlops.dev/notebookvalidationjobs') {
        if (training.startMs === undefined && phase === 'ValidationRunning') training.startMs = since();
        if (training.endMs === undefined && (phase === 'Succeeded' || phase === 'Failed')) { training.endMs = since(); training.succeeded = phase === 'Succeeded'; }
      } else if (e.storageKey === 'lifecycle.mlops.dev/modelruns' && o.spec?.model === SCENARIO_MODEL && concludedMs === undefined && isTerminalPhase(phase)) {
        concludedMs = since();
      }
    });
    await local.pings.fireNow(`${DEV_NAMESPACE}/schedule-${SCENARIO_MODEL}`);
    let done: ModelRun | undefined;
    const deadline = t0 + (opts.timeoutMs ?? 120_000);
    while (!done) {
      done = runs().find((r) => isTerminalPhase(r.status?.phase));
      if (done) break;
      if (performance.now() > deadline) throw new Error(`${opts.scenario}: no terminal phase within ${opts.timeoutMs ?? 120_000} ms (phase ${runs()[0]?.status?.phase ?? 'none'})`);
      await sleep(2);
    }
    const wallMs = performance.now() - t0;
    // Let the tail settle (notifications, lock release, last status events) before counting calls.
    await settle(local);
    unwatch();
    const records = local.broker.records.slice(recordsFrom);
    const requests = local.emulator.requests.slice(requestsFrom);
    const byStep: Record<string, number> = {};
    let sourceApiCalls = 0;
    for (const r of requests) {
      if (!r.user.startsWith(SA_PREFIX)) continue;
      const name = r.user.slice(SA_PREFIX.length);
      if ((STEP_NAMES as readonly string[]).includes(name)) byStep[name] = (byStep[name] ?? 0) + 1;
      else sourceApiCalls += 1;
    }
    const stepOfUrl = new Map(Object.entries(local.steps).map(([name, running]) => [running.url, name]));
    const functionMsByStep: Record<string, number> = {};
    for (const r of records) {
      const step = stepOfUrl.get(r.subscriber.replace(/\/$/, '')) ?? r.trigger;
      if (r.subscriber !== '') functionMsByStep[step] = (functionMsByStep[step] ?? 0) + r.ms;
    }
    const traced = records.filter((r) => r.subscriber !== '').map((r) => {
      const startMs = Date.parse(r.at) - wall0;
      return { step: stepOfUrl.get(r.subscriber.replace(/\/$/, '')) ?? r.trigger, startMs, endMs: startMs + r.ms };
    });
    const trace: RunTrace = {
      deliveries: traced, pods: [...pods.values()],
      ...(training.startMs !== undefined ? { trainingStartMs: training.startMs } : {}), ...(training.endMs !== undefined ? { trainingEndMs: training.endMs } : {}),
      trainingSucceeded: training.succeeded === true, concludedMs: concludedMs ?? wallMs, phase: done.status?.phase ?? '?',
    };
    const events: string[] = [];
    for (const r of records) if (r.eventType.startsWith('dev.mlops.') && !events.includes(r.eventType)) events.push(r.eventType);
    const expected = (local.expected as Record<string, { phase?: string } | undefined>)[SCENARIO_MODEL]?.phase;
    return {
      scenario: opts.scenario, model: SCENARIO_MODEL, phase: done.status?.phase ?? '?', expectedPhase: expected, wallMs,
      functionMs: records.filter((r) => r.subscriber !== '').reduce((s, r) => s + r.ms, 0),
      functionMsByStep,
      deliveries: records.filter((r) => r.subscriber !== '').length,
      events,
      apiCalls: Object.values(byStep).reduce((s, n) => s + n, 0), apiCallsByStep: byStep, sourceApiCalls,
      gateSimulated: Boolean((done.status)?.gate?.simulated),
      trace,
    };
  } finally {
    await local.close();
  }
}
