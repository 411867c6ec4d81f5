import { CronExpressionParser } from 'cron-parser';
import type { RunStep } from '../../events/index.ts';
import type { Catalog, CatalogModel } from '../../runtime/catalog.ts';
import { Labels, runNameFor } from '../../runtime/labels.ts';
import { leaseExpired, type LeaseObject } from '../../runtime/lock.ts';
import { isTerminalPhase, type ModelRun, type ModelRunPhase, type StepName } from '../../runtime/resources.ts';
import { scheduleKey } from '../start-training/request.ts';
import { isServingRun } from '../../runtime/modelrun.ts';

// Pure decision for one watchdog tick: given every ModelRun and lock Lease we manage, the catalog, the time
// and the catch-ups already sent, the exact list of actions. No I/O, no clock: `now` is an input.

/** A run never left Pending (no NVJ, no status) for this long: start-training died half-way. */
export const PENDING_LIMIT_MS = 10 * 60_000;
/** The PingSource had this long to deliver a slot's tick before the watchdog catches it up. */
export const CATCHUP_GRACE_MS = 2 * 60_000;
/** start-training takes the lock just before it creates the run: a Lease younger than this without a run is not orphaned yet. */
export const ORPHAN_LEASE_GRACE_MS = 2 * 60_000;
/** Terminal ModelRuns kept per model; older ones are pruned. */
export const KEEP_TERMINAL_RUNS = 50;

// Used when a run's model has left the catalog: its step budgets are the catalog defaults.
const DEFAULT_DEADLINES: CatalogModel['deadlines'] = { trainingMinutes: 240, copyMinutes: 30, gateMinutes: 15, promoteMinutes: 10, verifyMinutes: 15 };

/** What the step's stray work is: the NVJ (named as the run) or the step Job `<run>-<step>`. */
export type KillTarget = { kind: 'nvj'; name: string } | { kind: 'job'; name: string };

export type WatchdogAction =
  /** Verifying past its deadline: mark `steps.verify` failed (CAS, once) and send deployment.failed so restart-predictor rolls back. */
  | { kind: 'fail-verify'; run: string; model: string; release: string; reason: 'no-ready-pod' | 'timeout'; message: string }
  /** Kill the step's work, finishRun(Failed) (frees the lock, re-submits a queued request), send run.failed. */
  | { kind: 'fail-run'; run: string; from: ModelRunPhase; model: string; step: Exclude<RunStep, 'watchdog'>; reason: 'deadline' | 'lock-expired'; message: string; kill: KillTarget }
  /** Free a Lease whose holder is gone or already ended (re-submitting any request parked on it). */
  | { kind: 'release-lock'; model: string; lease: string; holder: string; why: 'holder-gone' | 'holder-terminal' }
  /** Send one training.requested (trigger catchup) for a missed slot and remember it. */
  | { kind: 'catch-up'; model: string; slot: string; run: string }
  /** Delete an old terminal ModelRun (its NVJ/Jobs go with it through owner references). */
  | { kind: 'prune'; run: string; model: string };

export interface WatchdogState {
  runs: readonly ModelRun[];
  leases: readonly LeaseObject[];
  catalog: Catalog;
  now: Date;
  /** model → the last slot a catch-up was sent for (ConfigMap `model-lifecycle-watchdog`). */
  remembered: Readonly<Record<string, string>>;
}

export function decideWatchdog(state: WatchdogState): WatchdogAction[] {
  const { runs, catalog, now } = state;
  const byName = new Map<string, ModelRun>();
  for (const r of runs) if (r.metadata.name) byName.set(r.metadata.name, r);

  const actions: WatchdogAction[] = [];
  const handled = new Set<string>();

  // 1. Deadlines.
  for (const run of sortedByName(runs)) {
    if (isTerminalPhase(run.status?.phase)) continue;
    const action = deadlineAction(run, modelOf(catalog, run), now);
    if (action) { actions.push(action); handled.add(run.metadata.name ?? ''); }
  }

  // 2. Locks.
  for (const lease of [...state.leases].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))) {
    const name = lease.metadata?.name;
    if (!name) continue;
    const holder = lease.spec?.holderIdentity ?? '';
    const model = lease.metadata?.labels?.[Labels.model] ?? name.replace(/^model-lock-/, '');
    const run = holder ? byName.get(holder) : undefined;
    if (!run) {
      const since = timeOf(lease.spec?.acquireTime ?? lease.metadata?.creationTimestamp);
      if (since === undefined || now.getTime() - since >= ORPHAN_LEASE_GRACE_MS) actions.push({ kind: 'release-lock', model, lease: name, holder, why: 'holder-gone' });
      continue;
    }
    if (isTerminalPhase(run.status?.phase)) {
      actions.push({ kind: 'release-lock', model, lease: name, holder, why: 'holder-terminal' });
      continue;
    }
    if (handled.has(holder) || !leaseExpired(lease, now)) continue;
    const action = expiredLockAction(run, modelOf(catalog, run), now);
    if (action) { actions.push(action); handled.add(holder); }
  }

  // 3. Catch-up of missed schedule slots.
  for (const model of catalog.models) {
    const action = catchUpAction(model, runs, byName, now, state.remembered[model.name]);
    if (action) actions.push(action);
  }

  // 4. Prune. (Model freshness is not the watchdog's: it comes from the ModelRuns through kube-state-metrics,
  // docs/monitoring.md.)
  actions.push(...pruneActions(runs));
  return actions;
}

// ---------------------------------------------------------------------------------------------------

const PhaseStep = { Training: 'training', Copying: 'copy', Gating: 'gate', Promoting: 'promote', Verifying: 'verify' } as const satisfies Record<string, StepName>;

interface StepWindow {
  step: Exclude<RunStep, 'watchdog'>;
  started: number | undefined;
  deadline: number | undefined;
  /** Verifying whose verify step has not reached a verdict yet: the failure is a deployment.failed. */
  verifyPending: boolean;
}

/**
 * Where a run stands and until when. `deadlines.step` is written when training starts and again when verification
 * starts; the steps in between inherit a stale one, so each step's own budget from its start counts as well (the later
 * of the two wins: a stale deadline never cuts a step short).
 */
function stepWindow(run: ModelRun, model: CatalogModel | undefined): StepWindow | undefined {
  const status = run.status ?? {};
  const phase = status.phase;
  if (phase === undefined || phase === 'Pending' || isTerminalPhase(phase)) return undefined;
  const d = model?.deadlines ?? DEFAULT_DEADLINES;
  const steps = status.steps ?? {};
  const recorded = timeOf(status.deadlines?.step);
  const later = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.max(a, b));
  const plus = (from: number | undefined, minutes: number): number | undefined => (from === undefined ? undefined : from + minutes * 60_000);

  switch (phase) {
    case 'Training': {
      const started = timeOf(steps.training?.started ?? status.startedAt ?? run.metadata.creationTimestamp);
      return { step: 'training', started, deadline: recorded ?? plus(started, d.trainingMinutes), verifyPending: false };
    }
    case 'Copying': {
      const started = timeOf(steps.copy?.started ?? steps.training?.finished);
      return { step: 'copy', started, deadline: later(recorded, plus(started, d.copyMinutes)), verifyPending: false };
    }
    case 'Gating': {
      const started = timeOf(steps.gate?.started ?? steps.copy?.finished ?? steps.training?.finished);
      return { step: 'gate', started, deadline: later(recorded, plus(started, d.gateMinutes)), verifyPending: false };
    }
    case 'Promoting': {
      // A manual rollback carries an old run's gate record: its promotion counts from when it left Pending.
      const started = timeOf(steps.promote?.started ?? (run.spec.trigger === 'manual-rollback' ? run.status?.startedAt : steps.gate?.finished));
      return { step: 'promote', started, deadline: later(recorded, plus(started, d.promoteMinutes)), verifyPending: false };
    }
    case 'Verifying': {
      if (steps.verify?.finished) {
        // The restored release is being verified on the rollback's new pods: the verify budget, from when restoring began.
        if (status.rollback) {
          const started = timeOf(status.rollback.startedAt);
          return { step: 'rollback', started, deadline: plus(started, d.verifyMinutes), verifyPending: false };
        }
        // Verification failed and restart-predictor is rolling back (a promote.py Job): the rollback has its own budget.
        const started = timeOf(steps.rollback?.started ?? steps.verify.finished);
        return { step: 'rollback', started, deadline: later(recorded, plus(started, d.promoteMinutes)), verifyPending: false };
      }
      const started = timeOf(steps.verify?.started ?? steps.promote?.finished);
      return { step: PhaseStep.Verifying, started, deadline: later(recorded, plus(started, d.verifyMinutes)), verifyPending: true };
    }
  }
  return undefined;
}

function deadlineAction(run: ModelRun, model: CatalogModel | undefined, now: Date): WatchdogAction | undefined {
  const name = run.metadata.name ?? '';
  const t = now.getTime();
  const phase = run.status?.phase;
  if (phase === undefined || phase === 'Pending') {
    const created = timeOf(run.metadata.creationTimestamp);
    if (created === undefined || t - created <= PENDING_LIMIT_MS) return undefined;
    if (run.spec.trigger === 'manual-rollback') {
      return { kind: 'fail-run', run: name, from: run.status?.phase ?? 'Pending', model: run.spec.model, step: 'promote', reason: 'deadline', message: `deadline exceeded: the manual rollback never started (after ${elapsed(t - created)} in Pending)`, kill: killTarget(name, 'promote') };
    }
    return { kind: 'fail-run', run: name, from: run.status?.phase ?? 'Pending', model: run.spec.model, step: 'training', reason: 'deadline', message: `deadline exceeded in training after ${elapsed(t - created)} (the run never left Pending)`, kill: { kind: 'nvj', name } };
  }
  const w = stepWindow(run, model);
  if (!w) return undefined;
  const runDeadline = timeOf(run.status?.deadlines?.run);
  const pastStep = w.deadline !== undefined && t > w.deadline;
  const pastRun = runDeadline !== undefined && t > runDeadline;
  if (!pastStep && !pastRun) return undefined;
  const minutes = elapsed(t - (w.started ?? timeOf(run.metadata.creationTimestamp) ?? t));
  if (w.verifyPending) {
    return { kind: 'fail-verify', run: name, model: run.spec.model, release: releaseOf(run), reason: 'no-ready-pod', message: `no new predictor pod became verifiable: deadline exceeded in verify after ${minutes}` };
  }
  return { kind: 'fail-run', run: name, from: run.status?.phase ?? 'Pending', model: run.spec.model, step: w.step, reason: 'deadline', message: `deadline exceeded in ${w.step} after ${minutes}`, kill: killTarget(name, w.step) };
}

/** The lock outlived its whole run budget while the run is still in flight: fail it the same way. */
function expiredLockAction(run: ModelRun, model: CatalogModel | undefined, now: Date): WatchdogAction | undefined {
  const name = run.metadata.name ?? '';
  const t = now.getTime();
  const w = stepWindow(run, model);
  const step = w?.step ?? 'training';
  const minutes = elapsed(t - (w?.started ?? timeOf(run.metadata.creationTimestamp) ?? t));
  if (w?.verifyPending) {
    return { kind: 'fail-verify', run: name, model: run.spec.model, release: releaseOf(run), reason: 'timeout', message: `the model lock expired while verifying (${minutes} in verify)` };
  }
  return { kind: 'fail-run', run: name, from: run.status?.phase ?? 'Pending', model: run.spec.model, step, reason: 'lock-expired', message: `the model lock expired while in ${step} (after ${minutes})`, kill: killTarget(name, step) };
}

function killTarget(run: string, step: Exclude<RunStep, 'watchdog'>): KillTarget {
  if (step === 'training') return { kind: 'nvj', name: run };
  // A verify step has no Job of its own; what may still run is the rollback.
  return { kind: 'job', name: `${run}-${step === 'verify' ? 'rollback' : step}` };
}

function releaseOf(run: ModelRun): string {
  return run.status?.release?.promoted ?? run.metadata.name ?? '';
}

/** The latest scheduled instant at or before `now` under the model's cron in its time zone (cron-parser DST rules). */
export function latestSlot(cron: string, timezone: string, now: Date): Date | undefined {
  try {
    // prev() is strictly before currentDate, hence the extra millisecond.
    return CronExpressionParser.parse(cron, { currentDate: new Date(now.getTime() + 1), tz: timezone }).prev().toDate();
  } catch {
    return undefined; // the catalog is validated at start-up; an unparseable cron has no slot to catch up
  }
}

function catchUpAction(model: CatalogModel, runs: readonly ModelRun[], byName: ReadonlyMap<string, ModelRun>, now: Date, remembered: string | undefined): WatchdogAction | undefined {
  if (!model.enabled || !model.schedule) return undefined;
  const slotDate = latestSlot(model.schedule.cron, model.schedule.timezone, now);
  if (!slotDate || now.getTime() - slotDate.getTime() <= CATCHUP_GRACE_MS) return undefined;
  const slot = slotDate.toISOString();
  if (remembered === slot) return undefined;
  const run = runNameFor(model.name, scheduleKey(model.name, slot));
  if (byName.has(run)) return undefined;
  // Any run of the model (whatever fired it) started at or after the slot makes up for it; so does an older catch-up.
  for (const r of runs) {
    if (r.spec.model !== model.name) continue;
    const started = timeOf(r.status?.startedAt ?? r.metadata.creationTimestamp);
    if (started !== undefined && started >= slotDate.getTime()) return undefined;
  }
  return { kind: 'catch-up', model: model.name, slot, run };
}

function pruneActions(runs: readonly ModelRun[]): WatchdogAction[] {
  const terminalByModel = new Map<string, ModelRun[]>();
  for (const r of runs) {
    if (!isTerminalPhase(r.status?.phase)) continue;
    const list = terminalByModel.get(r.spec.model) ?? [];
    list.push(r);
    terminalByModel.set(r.spec.model, list);
  }
  const out: WatchdogAction[] = [];
  for (const model of [...terminalByModel.keys()].sort()) {
    const list = (terminalByModel.get(model) ?? []).sort(newestFirst);
    // The newest Succeeded run is the served release's record (gate report, trained-at): never pruned.
    const served = list.find(isServingRun);
    // A manual rollback serves an older run's release: that run's record (gate probe, trained-at) is kept too.
    const origin = served?.status?.release?.promoted;
    for (const r of list.slice(KEEP_TERMINAL_RUNS)) {
      if (r === served || (origin !== undefined && r.metadata.name === origin)) continue;
      out.push({ kind: 'prune', run: r.metadata.name ?? '', model });
    }
  }
  return out;
}

/** Newest by when the run started (as the functions' clock wrote it), creation time when it never started. */
function newestFirst(a: ModelRun, b: ModelRun): number {
  const ta = timeOf(a.status?.startedAt ?? a.metadata.creationTimestamp) ?? 0;
  const tb = timeOf(b.status?.startedAt ?? b.metadata.creationTimestamp) ?? 0;
  return tb - ta || (b.metadata.name ?? '').localeCompare(a.metadata.name ?? '');
}

function sortedByName(runs: readonly ModelRun[]): ModelRun[] {
  return [...runs].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
}

function modelOf(catalog: Catalog, run: ModelRun): CatalogModel | undefined {
  return catalog.models.find((m) => m.name === run.spec.model);
}

function timeOf(value: string | Date | undefined): number | undefined {
  if (value === undefined) return undefined;
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? undefined : t;
}

const wholeMinutes = (ms: number): number => Math.max(0, Math.floor(ms / 60_000));
/** `300 min`, or seconds under a minute (dev's shortened deadlines): never "after 0 min". */
const elapsed = (ms: number): string => (ms < 60_000 ? `${Math.max(0, Math.round(ms / 1000))} s` : `${wholeMinutes(ms)} min`);
