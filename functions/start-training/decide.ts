import type { TrainingRequested } from '../../events/index.ts';
import type { CatalogModel } from '../../runtime/catalog.ts';
import type { ModelRun } from '../../runtime/resources.ts';
import { pausedText, type ModelControls } from '../../runtime/controls.ts';
import { CLI_SENDER, effectiveSender } from './policy.ts';

// Pure decision for start-training: given the normalised request and what the cluster holds, the exact
// list of effects to run. No I/O, no clock: `now` is an input.

export interface StartState {
  runName: string;
  /** The ModelRun with that name, if an earlier delivery created it. */
  existingRun?: ModelRun;
  /**
   * Holder of `model-lock-<model>` and whether the Lease has expired; undefined when free. `holderFinished`: the
   * holder's ModelRun exists and is terminal (its finisher has not deleted the Lease yet, e.g. it is sending the
   * parked request): the lock is free to take over.
   */
  lock?: { holder: string; expired: boolean; holderFinished?: boolean };
  /** Latest successful deploy of this model (drift cooldown). */
  lastSuccessAt?: Date;
  /** The model's day-2 controls (`model-controls-<model>`, docs/day2.md); only `paused` matters here. */
  controls?: ModelControls;
  now: Date;
}

export interface StartInput {
  data: TrainingRequested;
  origin: { source: string; id: string };
  model: CatalogModel;
  idempotencyKey: string;
}

export type StartAction =
  | { kind: 'acquire-lock'; run: string; durationSeconds: number }
  | { kind: 'take-over-lock'; run: string; from: string }
  | { kind: 'create-run'; run: string }
  | { kind: 'create-nvj'; run: string }
  | { kind: 'mark-training'; run: string; deadline: string; runDeadline: string }
  | { kind: 'enqueue'; holder: string; request: TrainingRequested }
  | { kind: 'reply-started'; run: string; deadline: string }
  | { kind: 'reply-skipped'; reason: 'already-running' | 'cooldown' | 'queued' | 'paused'; holder?: string; message: string; pausedBy?: string; pausedReason?: string };

const minutes = (m: number): number => m * 60_000;

export function trainingDeadline(model: CatalogModel, from: Date): string {
  return new Date(from.getTime() + minutes(model.deadlines.trainingMinutes)).toISOString();
}

/** The whole run's budget: the lock lives this long before the watchdog may take it over. */
export function runBudgetMinutes(model: CatalogModel): number {
  const d = model.deadlines;
  return d.trainingMinutes + d.copyMinutes + d.gateMinutes + d.promoteMinutes + d.verifyMinutes + 15;
}

export function decideStart(input: StartInput, state: StartState): StartAction[] {
  const { model, data } = input;
  const run = state.runName;
  const existing = state.existingRun;

  if (existing) {
    // A redelivery. Finish what an interrupted delivery started, then answer as the first time did.
    const phase = existing.status?.phase;
    const deadline = existing.status?.deadlines?.step ?? trainingDeadline(model, state.now);
    if (phase === undefined || phase === 'Pending') {
      const created = new Date(existing.metadata.creationTimestamp ?? state.now);
      return [
        { kind: 'acquire-lock', run, durationSeconds: runBudgetMinutes(model) * 60 },
        { kind: 'create-nvj', run },
        { kind: 'mark-training', run, deadline: trainingDeadline(model, created), runDeadline: runDeadline(model, created) },
        { kind: 'reply-started', run, deadline: trainingDeadline(model, created) },
      ];
    }
    return [{ kind: 'reply-started', run, deadline: typeof deadline === 'string' ? deadline : new Date(deadline).toISOString() }];
  }

  // A paused model trains on nothing automatic; only a person's `mlops train --force` goes through (docs/day2.md).
  const paused = state.controls?.paused;
  if (paused && !forcedByPerson(input)) {
    return [{
      kind: 'reply-skipped', reason: 'paused', pausedBy: paused.by, ...(paused.reason ? { pausedReason: paused.reason } : {}),
      message: `model ${model.name} is ${pausedText(paused)}; ${data.trigger} request not started (mlops resume ${model.name}, or mlops train ${model.name} --force)`,
    }];
  }

  if (data.trigger === 'drift' && state.lastSuccessAt) {
    const until = state.lastSuccessAt.getTime() + minutes(model.drift.cooldownMinutes);
    if (state.now.getTime() < until) {
      return [{ kind: 'reply-skipped', reason: 'cooldown', message: `model ${model.name} was deployed at ${state.lastSuccessAt.toISOString()}; drift requests are ignored until ${new Date(until).toISOString()}` }];
    }
  }

  if (state.lock && state.lock.holder !== run && !state.lock.holderFinished) {
    // An expired lock is the watchdog's to take over (it fails the stuck run first); until then we wait.
    const holder = state.lock.holder;
    if (model.concurrency === 'queue-latest') {
      const provenance = { eventSource: input.origin.source, eventId: input.origin.id, ...data.provenance };
      return [
        { kind: 'enqueue', holder, request: { ...data, provenance } },
        { kind: 'reply-skipped', reason: 'queued', holder, message: `run ${holder} holds the lock; this request waits and starts when it ends (newest waiting request wins)` },
      ];
    }
    return [{ kind: 'reply-skipped', reason: 'already-running', holder, message: `run ${holder} is already training model ${model.name}` }];
  }

  const deadline = trainingDeadline(model, state.now);
  const lock: StartAction = state.lock && state.lock.holder !== run
    ? { kind: 'take-over-lock', run, from: state.lock.holder }
    : { kind: 'acquire-lock', run, durationSeconds: runBudgetMinutes(model) * 60 };
  return [
    lock,
    { kind: 'create-run', run },
    { kind: 'create-nvj', run },
    { kind: 'mark-training', run, deadline, runDeadline: runDeadline(model, state.now) },
    { kind: 'reply-started', run, deadline },
  ];
}

/** `mlops train --force`: a manual request from the CLI (judged by its first sender, like overrides) that says force. */
export function forcedByPerson(input: Pick<StartInput, 'data' | 'origin'>): boolean {
  return input.data.force === true && input.data.trigger === 'manual' && effectiveSender(input.origin.source, input.data) === CLI_SENDER;
}

function runDeadline(model: CatalogModel, from: Date): string {
  return new Date(from.getTime() + minutes(runBudgetMinutes(model))).toISOString();
}
