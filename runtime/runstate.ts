import { ConflictError, type KubePort } from './kube.ts';
import { Labels } from './labels.ts';
import { Resources, TerminalPhases, isTerminalPhase, type ModelRun, type ModelRunPhase, type ModelRunSpec, type ModelRunStatus } from './resources.ts';

// The one run state machine (docs/run-lifecycle.md): every phase a ModelRun can be in, every allowed change with
// the guard that must hold on the status being written, and `transition`, the only code that writes
// `status.phase`. A writer names the phase it decided from; the write is a compare-and-swap on both the
// resourceVersion and that phase, so a writer that decided on stale state fails cleanly and decides again.

/** What a guard sees: the status as it would be written (phase already set) and the run's spec. */
export interface GuardInput {
  next: ModelRunStatus;
  spec: Pick<ModelRunSpec, 'profile' | 'model' | 'trigger' | 'rollback'>;
}

/** A guard returns undefined when the change is allowed, otherwise why not. */
export type Guard = (input: GuardInput) => string | undefined;

export interface RunTransition {
  from: ModelRunPhase;
  to: ModelRunPhase;
  /** Who makes this change (documentation; the diagram labels edges with it). */
  by: string;
  guard?: Guard;
}

const need = (ok: boolean, why: string): string | undefined => (ok ? undefined : why);

const trainingSucceeded: Guard = ({ next }) => need(next.steps?.training?.outcome === 'Succeeded', 'training has not succeeded');
const profileIs = (profile: 'cpu' | 'gpu'): Guard => ({ spec }) => need(spec.profile === profile, `profile is ${spec.profile}, not ${profile}`);
const all = (...guards: Guard[]): Guard => (input) => {
  for (const g of guards) {
    const why = g(input);
    if (why) return why;
  }
  return undefined;
};
/** Ending a run says why. */
const hasMessage: Guard = ({ next }) => need((next.message ?? '').length > 0, 'a run ends with a message');
/**
 * Leaving Verifying as Failed is only allowed once a rollback was attempted (or there was nothing to roll back
 * to): a release that was neither verified nor rolled back must never be left behind silently.
 */
const rollbackSettled: Guard = ({ next }) => need(next.steps?.rollback?.finished !== undefined, 'a run in Verifying fails only after its rollback was attempted');
/**
 * RolledBack only once the restored release was verified like a promotion: its new pods answered the probe rows
 * (status.rollback.verified, written by verify-endpoint) and it is the release recorded as restored.
 */
const rollbackVerified: Guard = ({ next }) => {
  const rb = next.rollback;
  if (typeof next.release?.restored !== 'string' || next.steps?.rollback?.finished === undefined) return 'no restored release recorded';
  if (rb?.release !== next.release.restored) return `the rollback record names ${rb?.release ?? 'no release'}, not ${next.release.restored}`;
  return need(rb.verified === true, 'the restored release has not been verified');
};

export const RunTransitions: readonly RunTransition[] = [
  { from: 'Pending', to: 'Training', by: 'start-training', guard: ({ next }) => need(next.steps?.training?.job !== undefined, 'no NVJ recorded') },
  // A gated restart of a notebook validated outside the lifecycle (argocd-sync) starts after training.
  { from: 'Pending', to: 'Copying', by: 'argocd-sync', guard: all(trainingSucceeded, profileIs('gpu')) },
  { from: 'Pending', to: 'Gating', by: 'argocd-sync', guard: all(trainingSucceeded, profileIs('cpu')) },
  { from: 'Pending', to: 'Failed', by: 'start-training, restart-predictor, watchdog', guard: hasMessage },
  // A manual rollback (docs/day2.md) starts at the promotion: the release it serves again was trained and gated by
  // the run it is named after, whose gate record (probe rows included) it carries so it is verified the same way.
  {
    from: 'Pending', to: 'Promoting', by: 'restart-predictor (manual rollback)',
    guard: ({ next, spec }) => need(spec.trigger === 'manual-rollback' && spec.rollback !== undefined, 'not a manual rollback')
      ?? need(next.gate?.verdict === 'approved' || spec.rollback?.force === true, 'the release to restore was never approved (and the rollback is not forced)'),
  },
  { from: 'Training', to: 'Copying', by: 'track-training', guard: all(trainingSucceeded, profileIs('gpu')) },
  { from: 'Training', to: 'Gating', by: 'track-training', guard: all(trainingSucceeded, profileIs('cpu')) },
  { from: 'Training', to: 'Failed', by: 'track-training, watchdog', guard: hasMessage },
  { from: 'Copying', to: 'Gating', by: 'copy-gpu-model', guard: ({ next }) => need(next.steps?.copy?.outcome === 'copied', 'the copy has not succeeded') },
  { from: 'Copying', to: 'Failed', by: 'copy-gpu-model, watchdog', guard: hasMessage },
  {
    from: 'Gating', to: 'Promoting', by: 'gate-health',
    guard: ({ next }) => need(next.gate?.verdict === 'approved' && next.steps?.gate?.outcome === 'approved', 'the gate has not approved'),
  },
  {
    from: 'Gating', to: 'Rejected', by: 'gate-health',
    guard: all(hasMessage, ({ next }) => need(next.steps?.gate?.outcome === 'rejected', 'the gate has not rejected')),
  },
  { from: 'Gating', to: 'Failed', by: 'gate-health, watchdog', guard: hasMessage },
  // Verifying is written BEFORE the InferenceService is patched: a run in Promoting never has its release served.
  { from: 'Promoting', to: 'Verifying', by: 'restart-predictor', guard: ({ next }) => need(next.release?.promoted !== undefined, 'no promoted release recorded') },
  { from: 'Promoting', to: 'Failed', by: 'restart-predictor, watchdog', guard: hasMessage },
  // The model's release is pinned (docs/day2.md): an approved run ends without promoting, saying who pinned what.
  {
    from: 'Promoting', to: 'Succeeded', by: 'restart-predictor (pinned)',
    guard: all(hasMessage, ({ next }) => need(next.release?.pinned !== undefined && next.release.promoted === undefined, 'no pin recorded, or a release was promoted'),
      ({ next }) => need(next.gate?.verdict === 'approved', 'the gate has not approved'),
      ({ next }) => need(next.steps?.promote?.outcome === 'pinned', 'the promote record does not say pinned')),
  },
  { from: 'Verifying', to: 'Succeeded', by: 'verify-endpoint', guard: all(hasMessage, ({ next }) => need(next.steps?.verify?.outcome === 'verified', 'verification has not succeeded')) },
  { from: 'Verifying', to: 'RolledBack', by: 'verify-endpoint', guard: all(hasMessage, rollbackVerified) },
  { from: 'Verifying', to: 'Failed', by: 'restart-predictor, verify-endpoint, watchdog', guard: all(hasMessage, rollbackSettled) },
];

export const RUN_PHASES: readonly ModelRunPhase[] = ['Pending', 'Training', 'Copying', 'Gating', 'Promoting', 'Verifying', 'Succeeded', 'Failed', 'Rejected', 'RolledBack'];

export function findTransition(from: ModelRunPhase, to: ModelRunPhase): RunTransition | undefined {
  return RunTransitions.find((t) => t.from === from && t.to === to);
}

/** Why `from → to` with this status may not be written, or undefined when it may. */
export function refusal(from: ModelRunPhase, to: ModelRunPhase, input: GuardInput): string | undefined {
  if (isTerminalPhase(from)) return `${from} is terminal`;
  const t = findTransition(from, to);
  if (!t) return `${from} → ${to} is not a run transition`;
  return t.guard?.(input);
}

/** The phase a status is in; a run without one is Pending. */
export const phaseOf = (run: Pick<ModelRun, 'status'> | undefined): ModelRunPhase => run?.status?.phase ?? 'Pending';

export type TransitionResult =
  /** Written: `run` is the stored object. */
  | { kind: 'moved'; run: ModelRun }
  /** The run is no longer in `from` (someone else moved it): decide again from `run`. */
  | { kind: 'stale'; run: ModelRun }
  /** The patch chose not to change anything (undefined), e.g. its record is already there. */
  | { kind: 'unchanged'; run: ModelRun }
  /** The run does not exist. */
  | { kind: 'gone' };

/** A writer asked for a change the state machine does not allow: a bug in that writer, never retried. */
/** The run as stored after a transition attempt (undefined when it does not exist). */
export const runOf = (result: TransitionResult): ModelRun | undefined => (result.kind === 'gone' ? undefined : result.run);

/** A writer asked for a change the state machine does not allow: a bug in that writer, never retried. */
export class TransitionRefused extends Error {
  readonly from: ModelRunPhase;
  readonly to: ModelRunPhase;
  readonly reason: string;
  constructor(from: ModelRunPhase, to: ModelRunPhase, reason: string) {
    super(`ModelRun transition ${from} → ${to} refused: ${reason}`);
    this.name = 'TransitionRefused';
    this.from = from;
    this.to = to;
    this.reason = reason;
  }
}

export interface TransitionRequest {
  from: ModelRunPhase;
  to: ModelRunPhase;
  /** The status to write besides the phase (records, artifact, release ...); undefined = nothing to do. */
  patch: (status: ModelRunStatus, run: ModelRun) => ModelRunStatus | undefined;
  /** ISO time: stamps `startedAt` when leaving Pending and `finishedAt` on a terminal phase. */
  now: string;
}

/**
 * Move a run from `req.from` to `req.to`. Reads the run, returns `stale` when it is not in `from`, applies the patch,
 * checks the transition's guard on the result (a refused guard is a programming error: TransitionRefused), and writes
 * with JSON-patch `test`s on resourceVersion and on the phase. Lost races are retried while the run stays in `from`.
 */
export async function transition(kube: KubePort, name: string, req: TransitionRequest, attempts = 5): Promise<TransitionResult> {
  for (let i = 0; ; i++) {
    const run = await kube.get<ModelRun & Record<string, unknown>>(Resources.modelRun, name);
    if (!run) return { kind: 'gone' };
    const current = phaseOf(run);
    if (current !== req.from) return { kind: 'stale', run };
    const patched = req.patch(structuredClone(run.status ?? {}), run);
    if (!patched) return { kind: 'unchanged', run };
    const next: ModelRunStatus = {
      ...patched,
      phase: req.to,
      ...(req.from === 'Pending' && !patched.startedAt ? { startedAt: req.now } : {}),
      ...((TerminalPhases as readonly string[]).includes(req.to) ? { finishedAt: req.now } : {}),
    };
    const why = refusal(req.from, req.to, { next, spec: run.spec });
    if (why) throw new TransitionRefused(req.from, req.to, why);
    const ops: object[] = [{ op: 'test', path: '/metadata/resourceVersion', value: run.metadata.resourceVersion }];
    if (run.status?.phase !== undefined) ops.push({ op: 'test', path: '/status/phase', value: run.status.phase });
    ops.push({ op: 'add', path: '/status', value: next });
    try {
      const updated = await kube.jsonPatch<ModelRun & Record<string, unknown>>(Resources.modelRun, name, ops, { subresource: 'status' });
      if (!updated) return { kind: 'gone' };
      await syncPhaseLabel(kube, updated);
      return { kind: 'moved', run: updated };
    } catch (err) {
      if (!(err instanceof ConflictError) || i >= attempts - 1) throw err;
    }
  }
}

/**
 * Keep `mlops.dev/phase` in step with status.phase so lists can filter by phase. A failed label write is not fatal
 * here: every reader that decides on a phase reads status.phase, and the reconcile re-syncs labels that lag.
 */
export async function syncPhaseLabel(kube: KubePort, run: ModelRun): Promise<boolean> {
  const phase = run.status?.phase;
  if (!phase || run.metadata.labels?.[Labels.phase] === phase) return false;
  try {
    await kube.mergePatch(Resources.modelRun, run.metadata.name ?? '', { metadata: { labels: { [Labels.phase]: phase } } });
    return true;
  } catch {
    return false;
  }
}

/** The lifecycle diagram (mermaid) drawn from the table, as docs/run-lifecycle.md shows it. */
export function lifecycleDiagram(): string {
  const lines = ['stateDiagram-v2', '  [*] --> Pending'];
  for (const t of RunTransitions) lines.push(`  ${t.from} --> ${t.to}: ${t.by}`);
  for (const p of TerminalPhases) lines.push(`  ${p} --> [*]`);
  return lines.join('\n');
}
