import type { GateCheck, ModelApproved, ModelRejected, Probe } from '../../events/index.ts';
import { baselineStatus, type BaselineStatus } from '../../runtime/baseline.ts';
import type { CatalogModel } from '../../runtime/catalog.ts';
import { jobNameFor } from '../../runtime/labels.ts';
import type { ModelRun } from '../../runtime/resources.ts';
import { evaluateGate, type GateEvidence, type ServedRelease } from './report.ts';

// Pure decision for gate-health: the trigger (`training.succeeded` of a CPU run, `model.copied`) or the end of
// the `<run>-gate` Job, plus the run as read → the exact effects. No I/O, no clock: `now` is an input.

export type GateInput =
  | { kind: 'trigger'; event: 'training.succeeded' | 'model.copied'; run: string; profile: 'cpu' | 'gpu' }
  | { kind: 'job-finished'; run: string; evidence: GateEvidence };

export interface GateState {
  run?: ModelRun;
  /** The catalog entry of the run's model. */
  model: CatalogModel;
  mode: 'cluster' | 'dev';
  /** Newest Succeeded run of the model other than this one, with its recorded gate evidence. */
  served?: ServedRelease;
  now: Date;
}

/** What approval writes on the ModelRun (status.gate, status.probe, status.artifact, warnings). */
export interface GateRecord {
  verdict: 'approved' | 'rejected';
  checks: Array<{ name: string; ok: boolean; message?: string }>;
  report: Record<string, unknown>;
  /** The comparison with the served release, typed for kube-state-metrics (runtime/baseline.ts). */
  baseline?: BaselineStatus;
  simulated?: true;
}

export type GateAction =
  | { kind: 'ignore'; reason: string }
  | { kind: 'create-job'; run: string; job: string }
  | { kind: 'record-started'; run: string; job: string; deadline: string }
  | { kind: 'record-approved'; run: string; gate: GateRecord; probe: Probe; artifact: { path: string; bytes: number; sha256: string }; warnings: string[]; message: string }
  | { kind: 'record-rejected'; run: string; gate: GateRecord; message: string }
  | { kind: 'reply-approved'; data: ModelApproved }
  | { kind: 'reply-rejected'; data: ModelRejected };

import { stagedArtifactPath as artifactPathOf } from '../../runtime/labels.ts';
export { artifactPathOf };

export function gateDeadline(model: CatalogModel, from: Date): string {
  return new Date(from.getTime() + model.deadlines.gateMinutes * 60_000).toISOString();
}

export function decideGate(input: GateInput, state: GateState): GateAction[] {
  const run = state.run;
  const name = input.run;
  if (!run) return [{ kind: 'ignore', reason: `no ModelRun ${name} (deleted or not ours)` }];
  const status = run.status ?? {};
  const gate = status.steps?.gate;

  if (input.kind === 'trigger') {
    if (input.event === 'training.succeeded' && input.profile === 'gpu') return [{ kind: 'ignore', reason: 'GPU runs are gated after model.copied' }];
    if (gate?.finished) return [{ kind: 'ignore', reason: `gate already ${gate.outcome ?? 'finished'}` }];
    if (status.phase !== 'Gating') return [{ kind: 'ignore', reason: `run is ${status.phase ?? 'without a phase'}, not Gating` }];
    const job = jobNameFor(name, 'gate');
    // A redelivery re-creates nothing (AlreadyExists) and keeps the first start time and deadline.
    return [
      { kind: 'create-job', run: name, job },
      { kind: 'record-started', run: name, job, deadline: gateDeadline(state.model, state.now) },
    ];
  }

  if (gate?.finished) return replayVerdict(run, name);
  if (status.phase !== 'Gating') return [{ kind: 'ignore', reason: `run is ${status.phase ?? 'without a phase'}; a late gate Job changes nothing` }];

  const verdict = evaluateGate(input.evidence, {
    model: state.model,
    mode: state.mode,
    ...(status.artifact?.sha256 || status.artifact?.bytes !== undefined ? { copied: { sha256: status.artifact?.sha256, bytes: status.artifact?.bytes } } : {}),
    ...(state.served ? { served: state.served } : {}),
  });
  const baseline = baselineStatus(verdict.report, verdict.checks);
  const record: GateRecord = {
    verdict: verdict.verdict,
    checks: verdict.checks.map(toStatusCheck),
    report: verdict.report,
    ...(baseline ? { baseline } : {}),
    ...(verdict.simulated ? { simulated: true as const } : {}),
  };
  const model = run.spec.model;
  if (verdict.verdict === 'approved') {
    const path = status.artifact?.path ?? artifactPathOf(name, model);
    return [
      { kind: 'record-approved', run: name, gate: record, probe: verdict.probe, artifact: { path, bytes: verdict.bytes, sha256: verdict.sha256 }, warnings: verdict.warnings, message: verdict.message },
      { kind: 'reply-approved', data: { model, run: name, path, bytes: verdict.bytes, sha256: verdict.sha256, ...(verdict.simulated ? { simulated: true } : {}), checks: verdict.checks, probe: verdict.probe } },
    ];
  }
  return [
    { kind: 'record-rejected', run: name, gate: record, message: verdict.message },
    { kind: 'reply-rejected', data: { model, run: name, checks: verdict.checks, failed: verdict.failed, message: verdict.message } },
  ];
}

/**
 * The verdict was recorded by an earlier delivery. Re-emit it (same deterministic id, receivers de-duplicate) so a
 * reply lost to a crash is recovered, but only while the next step has not started; otherwise stay silent.
 */
function replayVerdict(run: ModelRun, name: string): GateAction[] {
  const status = run.status ?? {};
  const outcome = status.steps?.gate?.outcome;
  const model = run.spec.model;
  const checks: GateCheck[] = (status.gate?.checks ?? []).map((c) => ({ name: c.name, ok: c.ok, ...(c.message !== undefined ? { message: c.message } : {}) }));
  if (outcome === 'approved') {
    if (status.steps?.promote?.started) return [{ kind: 'ignore', reason: 'gate approved; promotion already started' }];
    const a = status.artifact;
    const probe = status.probe;
    if (!a?.path || a.bytes === undefined || !a.sha256 || !probe?.rows || !probe.expected) return [{ kind: 'ignore', reason: 'gate approved but the recorded evidence is incomplete' }];
    return [{ kind: 'reply-approved', data: {
      model, run: name, path: a.path, bytes: a.bytes, sha256: a.sha256, ...(status.gate?.simulated ? { simulated: true } : {}), checks,
      probe: { rows: probe.rows, expected: probe.expected } as Probe,
    } }];
  }
  if (outcome === 'rejected') {
    const failed = checks.filter((c) => !c.ok).map((c) => c.name);
    if (failed.length === 0) return [{ kind: 'ignore', reason: 'gate rejected but no failed check is recorded' }];
    return [{ kind: 'reply-rejected', data: { model, run: name, checks, failed, message: status.steps?.gate?.message ?? 'gate rejected the model' } }];
  }
  return [{ kind: 'ignore', reason: `gate already finished (${outcome ?? 'no outcome'})` }];
}

function toStatusCheck(c: GateCheck): { name: string; ok: boolean; message?: string } {
  return { name: c.name, ok: c.ok, ...(c.message !== undefined ? { message: c.message } : {}) };
}
