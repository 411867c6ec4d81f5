import { clip, MESSAGE_MAX } from '../../events/index.ts';
import type { ModelRun } from '../../runtime/resources.ts';

// Pure decision for track-training: an NVJ update (phase as the operator wrote it) and our ModelRun →
// what to do. Terminal phases are mapped once per run however many updates arrive.

export interface TrackInput {
  phase: string | undefined;
  message: string;
  completionTime?: string;
}

export type TrackAction =
  | { kind: 'ignore'; reason: string }
  | { kind: 'record-success'; next: 'Copying' | 'Gating'; warning?: string }
  | { kind: 'record-failure'; message: string }
  | { kind: 'reply-succeeded'; warning?: string; completedAt?: string }
  | { kind: 'reply-failed'; message: string };

// The operator reports a collected-log problem in an otherwise successful run; the model is still there.
const LOGS_NOT_COLLECTED = /\blogs?\b.*\b(could not|couldn't|cannot|can't|failed to|unable to)\b.*\bcollect|\b(could not|couldn't|cannot|failed to|unable to)\b.*\bcollect\w*\b.*\blogs?\b/i;

export function decideTrack(input: TrackInput, run: ModelRun | undefined, profile: 'cpu' | 'gpu'): TrackAction[] {
  if (!run) return [{ kind: 'ignore', reason: 'no ModelRun for this NVJ (deleted or not ours)' }];
  const phase = input.phase;
  if (phase !== 'Succeeded' && phase !== 'Failed') return [{ kind: 'ignore', reason: `phase ${phase ?? '(none)'} is not terminal` }];

  const training = run.status?.steps?.training;
  if (training?.finished) {
    // Already mapped. Re-emit the same event (same id, receivers de-duplicate) only while the next step has not
    // started, so a reply lost to a crash is recovered and later updates stay silent.
    const steps = run.status?.steps ?? {};
    if (steps.copy?.started || steps.gate?.started) return [{ kind: 'ignore', reason: 'already tracked; next step started' }];
    if (training.outcome === 'Succeeded') {
      const warning = warningOf(run);
      return [{ kind: 'reply-succeeded', completedAt: new Date(training.finished).toISOString(), ...(warning ? { warning } : {}) }];
    }
    // Clipped again: a run recorded before messages were bounded must still get its event out.
    if (training.outcome === 'Failed') return [{ kind: 'reply-failed', message: clip(training.message ?? 'training failed', MESSAGE_MAX) }];
    return [{ kind: 'ignore', reason: 'already tracked' }];
  }
  if (run.status?.phase && run.status.phase !== 'Training' && run.status.phase !== 'Pending') {
    return [{ kind: 'ignore', reason: `run is ${run.status.phase}; a late NVJ update changes nothing` }];
  }

  if (phase === 'Succeeded') {
    const warning = LOGS_NOT_COLLECTED.test(input.message) ? clip(`training succeeded but the operator could not collect logs: ${input.message}`, MESSAGE_MAX) : undefined;
    const next = profile === 'gpu' ? 'Copying' : 'Gating';
    return [
      { kind: 'record-success', next, ...(warning ? { warning } : {}) },
      { kind: 'reply-succeeded', ...(warning ? { warning } : {}) },
    ];
  }
  // The operator's message is whatever the notebook printed (a whole traceback): bounded to what the event allows.
  const message = clip(input.message || 'the notebook failed (no message from the operator)', MESSAGE_MAX);
  return [{ kind: 'record-failure', message }, { kind: 'reply-failed', message }];
}

function warningOf(run: ModelRun): string | undefined {
  return run.status?.warnings?.find((w) => w.startsWith('training succeeded but'));
}
