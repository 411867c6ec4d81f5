// Chaos for the local cluster (docs/run-lifecycle.md, "Chaos"): API faults, steps that stop dead between two
// effects, events delivered 1..N times, and a fast watchdog tick. Everything is drawn from one seeded PRNG so a
// failing run can be repeated. `checkInvariants` is what every chaos run must still satisfy.
import type { CloudEvent } from 'cloudevents';
import type { FaultRule } from './emulator/index.ts';
import type { KubePort } from '../runtime/kube.ts';
import { Annotations, Labels } from '../runtime/labels.ts';
import { isTerminalPhase, type ModelRun } from '../runtime/resources.ts';
import type { EventSink } from '../runtime/step.ts';
import type { ExpectedPhase } from './sim/scenarios.ts';

export interface ChaosOptions {
  /** Share of API requests from the functions that fail (5xx, 409 on updates, resets) or are slowed. */
  apiFaultsPercent?: number;
  /** Share of a step's effects at whose boundary the step stops dead (the effects before it happened). */
  crashPercent?: number;
  /** Each broker delivery happens 1..N times. */
  maxDeliveries?: number;
  seed: number;
}

/**
 * The emulator's fault rules for `--api-faults P`: half of P as 500s on writes, a quarter as 409 Conflicts on
 * updates and patches (a create's 409 means AlreadyExists and is not a fault a real server injects), an eighth as
 * connection resets, a quarter as 503s on gets; and latency on P of everything. Only the functions' requests
 * (`userPrefix`): the local ApiServerSource has its own knobs (--drop-events, --coalesce, --reorder).
 */
export function apiFaultRules(percent: number, userPrefix: string): FaultRule[] {
  const p = Math.min(Math.max(percent, 0), 100) / 100;
  if (p === 0) return [];
  const rules: FaultRule[] = [
    { verb: 'get', rate: p / 4, status: 503, message: 'injected: etcd leader changed' },
    { verb: 'create', rate: p / 2, status: 500, message: 'injected: internal error' },
    { verb: 'update', rate: p / 2, status: 500, message: 'injected: internal error' },
    { verb: 'patch', rate: p / 2, status: 500, message: 'injected: internal error' },
    { verb: 'delete', rate: p / 2, status: 500, message: 'injected: internal error' },
    { verb: 'update', rate: p / 4, status: 409, message: 'injected: the object has been modified' },
    { verb: 'patch', rate: p / 4, status: 409, message: 'injected: the object has been modified' },
    { verb: 'write', rate: p / 8, reset: true },
    { verb: 'get', rate: p, latencyMs: 15 },
    { verb: 'list', rate: p, latencyMs: 15 },
    { verb: 'write', rate: p, latencyMs: 15 },
  ];
  return rules.map((r) => ({ ...r, userPrefix }));
}

/** A step stopped dead: what it did so far happened, nothing after; the broker sees a failure and redelivers. */
export class StepCrashed extends Error {
  constructor(step: string, at: string) {
    super(`chaos: ${step} stopped dead before ${at}`);
    this.name = 'StepCrashed';
  }
}

export interface CrashCounter { crashes: number }

const WRITES = new Set(['create', 'replace', 'mergePatch', 'jsonPatch', 'delete']);

/** The step's Kubernetes port and sink, stopping dead before a write or a send with the given probability. */
export function crashing(step: string, kube: KubePort, sink: EventSink, percent: number, random: () => number, counter: CrashCounter): { kube: KubePort; sink: EventSink } {
  const p = percent / 100;
  const maybeCrash = (at: string): void => {
    if (random() < p) {
      counter.crashes++;
      throw new StepCrashed(step, at);
    }
  };
  const crashingKube = new Proxy(kube, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const fn = (value as (...a: unknown[]) => unknown).bind(target);
      if (typeof prop !== 'string' || !WRITES.has(prop)) return fn;
      return (...args: unknown[]) => {
        maybeCrash(`kube.${prop}`);
        return fn(...args);
      };
    },
  });
  return {
    kube: crashingKube,
    sink: { send: async (event: CloudEvent<unknown>) => { maybeCrash(`sending ${event.type}`); await sink.send(event); } },
  };
}


export interface InvariantInput {
  runs: readonly ModelRun[];
  /** InferenceService name → the release its predictor annotation names. */
  served: ReadonlyMap<string, string | undefined>;
  /** NVJs and Jobs by run (label `mlops.dev/run`). */
  nvjsByRun: ReadonlyMap<string, number>;
  /** Expected terminal phase per model (one scheduled run each). */
  expected: Readonly<Record<string, { phase: ExpectedPhase } | undefined>>;
  /** model → its InferenceService. */
  isvcOf: ReadonlyMap<string, string>;
  /** Releases that were served before the run (seeded). */
  seeded: ReadonlySet<string>;
  /** Notifications per run (the local Slack stand-in's messages naming it). */
  notifications: ReadonlyMap<string, number>;
  /** model → the run a request sent while its first run was in flight must end up as (parked on the lock, then run). */
  queued?: ReadonlyMap<string, string>;
}

/** Every violated invariant, in words; empty when the run was sound. */
export function checkInvariants(input: InvariantInput): string[] {
  const problems: string[] = [];
  const byModel = new Map<string, ModelRun[]>();
  for (const r of input.runs) byModel.set(r.spec.model, [...(byModel.get(r.spec.model) ?? []), r]);
  for (const [model, want] of Object.entries(input.expected)) {
    if (!want) continue;
    const runs = byModel.get(model) ?? [];
    const queued = input.queued?.get(model);
    const requests = queued ? 2 : 1;
    if (runs.length !== requests) problems.push(`${model}: ${runs.length} runs for ${requests === 1 ? 'one scheduled request' : 'a scheduled and a queued request'} (want exactly ${requests})`);
    for (const run of runs) {
      if (run.status?.phase !== want.phase) problems.push(`${model}: run ${run.metadata.name ?? ''} ended ${run.status?.phase ?? 'unfinished'}, want ${want.phase}`);
    }
    // A request parked on the lock while the first run was in flight must never be lost (runtime/lock.ts).
    if (queued && !runs.some((r) => r.metadata.name === queued)) problems.push(`${model}: the queued request was lost (no run ${queued})`);
  }
  const byName = new Map(input.runs.map((r) => [r.metadata.name ?? '', r]));
  for (const r of input.runs) {
    const name = r.metadata.name ?? '';
    const nvjs = input.nvjsByRun.get(name) ?? 0;
    if (nvjs > 1) problems.push(`${name}: ${nvjs} NVJs`);
    const s = r.status ?? {};
    if (s.steps?.promote?.started && !(s.gate?.verdict === 'approved' && s.steps.gate?.outcome === 'approved')) problems.push(`${name}: promoted without an approved gate`);
    if (isTerminalPhase(s.phase) && (input.notifications.get(name) ?? 0) === 0 && s.phase !== 'Succeeded') problems.push(`${name}: ended ${s.phase} and nobody was told`);
  }
  // What is served at the end was verified, or restored by a rollback, or was there before.
  for (const [model, isvc] of input.isvcOf) {
    const release = input.served.get(isvc);
    if (release === undefined || input.seeded.has(release)) continue;
    const run = byName.get(release);
    const verified = run?.status?.phase === 'Succeeded' && run.status.steps?.verify?.outcome === 'verified';
    const restored = input.runs.some((r) => r.spec.model === model && r.status?.phase === 'RolledBack' && r.status.release?.restored === release);
    if (!verified && !restored) problems.push(`${model}: serves ${release}, which was neither verified nor restored by a rollback`);
  }
  return problems;
}

/** Reads what checkInvariants needs from a KubePort with list rights (the emulator's admin kubeconfig). */
export async function invariantInput(kube: KubePort, base: Pick<InvariantInput, 'expected' | 'isvcOf' | 'seeded' | 'notifications' | 'queued'>): Promise<InvariantInput> {
  const { Resources } = await import('../runtime/resources.ts');
  const [runs, nvjs, isvcs] = await Promise.all([
    kube.listAll<ModelRun & Record<string, unknown>>(Resources.modelRun, {}),
    kube.listAll(Resources.notebookValidationJob, {}),
    kube.listAll<{ metadata?: { name?: string }; spec?: { predictor?: { annotations?: Record<string, string> } } } & Record<string, unknown>>(Resources.inferenceService, {}),
  ]);
  const nvjsByRun = new Map<string, number>();
  for (const n of nvjs) {
    const run = n.metadata?.labels?.[Labels.run];
    if (run) nvjsByRun.set(run, (nvjsByRun.get(run) ?? 0) + 1);
  }
  return {
    ...base,
    runs,
    nvjsByRun,
    served: new Map(isvcs.map((i) => [i.metadata?.name ?? '', i.spec?.predictor?.annotations?.[Annotations.modelRelease]])),
  };
}

/**
 * A second request per model while its first run is in flight (a `queue-latest` model parks it on the Lease): sent
 * once each model's first run has left Pending. Returns model → the run it must become (runNameFor of its identity).
 */
export async function sendQueuedRequests(opts: {
  models: readonly string[];
  runs: () => readonly ModelRun[];
  send: (event: CloudEvent<unknown>) => Promise<void>;
  runNameOf: (model: string, key: string) => string;
  timeoutMs?: number;
}): Promise<Map<string, string>> {
  const { CloudEvent: Event } = await import('cloudevents');
  const { EventTypes } = await import('../events/index.ts');
  const out = new Map<string, string>();
  const end = Date.now() + (opts.timeoutMs ?? 60_000);
  const pending = new Set(opts.models);
  while (pending.size > 0 && Date.now() < end) {
    for (const model of [...pending]) {
      const inFlight = opts.runs().some((r) => r.spec.model === model && r.status?.phase !== undefined && r.status.phase !== 'Pending' && !isTerminalPhase(r.status.phase));
      if (!inFlight) continue;
      const source = '/mlops-dev/chaos';
      const id = `queued-${model}`;
      await opts.send(new Event({ type: EventTypes.trainingRequested, source, id, datacontenttype: 'application/json', data: { model, trigger: 'manual', requestedBy: 'chaos', reason: 'second request while the first run is in flight' } }));
      out.set(model, opts.runNameOf(model, `ce/${source}/${id}`));
      pending.delete(model);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return out;
}
