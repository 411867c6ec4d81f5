import type { JobEvidence } from '../../runtime/jobs.ts';
import { z } from 'zod';
import type { ModelCopied, RunFailed } from '../../events/index.ts';
import { SUMMARY_MAX, clip as clipText, describeIssues } from '../../events/index.ts';
import type { CatalogModel } from '../../runtime/catalog.ts';
import { jobNameFor } from '../../runtime/labels.ts';
import type { ModelRun } from '../../runtime/resources.ts';

// Pure decision for copy-gpu-model: `training.succeeded` of a GPU run, or the end of its `<run>-copy` Job, plus the
// run as read → the exact effects. No I/O, no clock: `now` is an input.

export type CopyInput =
  | { kind: 'trigger'; run: string; profile: 'cpu' | 'gpu' }
  | { kind: 'job-finished'; run: string; evidence: CopyEvidence };

/** The finished copy Job: runtime/jobs.ts readJobResult plus the Job's Failed condition. */
export type CopyEvidence = JobEvidence;

export interface CopyState {
  run?: ModelRun;
  model: CatalogModel;
  now: Date;
}

export const CopyFailureReasons = ['copy-failed', 'job-failed', 'no-result', 'invalid-result'] as const;
export type CopyFailureReason = (typeof CopyFailureReasons)[number];

export type CopyAction =
  | { kind: 'ignore'; reason: string }
  | { kind: 'create-job'; run: string; job: string }
  | { kind: 'record-started'; run: string; job: string; deadline: string }
  | { kind: 'record-copied'; run: string; artifact: { path: string; bytes: number; sha256: string }; message: string }
  | { kind: 'fail-run'; run: string; reason: CopyFailureReason; message: string }
  | { kind: 'reply-copied'; data: ModelCopied }
  | { kind: 'reply-run-failed'; data: RunFailed };

/** Exactly what copy.py emits (a shrunk result may lack `files`); an unknown key is refused. */
export const CopyResult = z.object({
  ok: z.boolean(),
  files: z.array(z.object({ name: z.string().min(1).max(1024), bytes: z.int().min(0), sha256: z.string() }).strict()).max(1000).optional(),
  bytes: z.int().min(0).nullable().optional(),
  sha256: z.string().nullable().optional(),
  path: z.string().max(1024).nullable().optional(),
  error: z.string().max(4096).optional(),
  truncated: z.literal(true).optional(),
}).strict();
export type CopyResult = z.infer<typeof CopyResult>;

const SHA256 = /^[a-f0-9]{64}$/;

import { stagedArtifactPath as artifactPathOf } from '../../runtime/labels.ts';
export { artifactPathOf };

export function copyDeadline(model: CatalogModel, from: Date): string {
  return new Date(from.getTime() + model.deadlines.copyMinutes * 60_000).toISOString();
}

export function decideCopy(input: CopyInput, state: CopyState): CopyAction[] {
  const run = state.run;
  const name = input.run;
  if (!run) return [{ kind: 'ignore', reason: `no ModelRun ${name} (deleted or not ours)` }];
  const status = run.status ?? {};
  const copy = status.steps?.copy;

  if (input.kind === 'trigger') {
    if (input.profile !== 'gpu' || run.spec.profile !== 'gpu') return [{ kind: 'ignore', reason: 'CPU runs train on the shared PVC: nothing to copy' }];
    if (copy?.finished) return [{ kind: 'ignore', reason: `copy already ${copy.outcome ?? 'finished'}` }];
    if (status.phase !== 'Copying') return [{ kind: 'ignore', reason: `run is ${status.phase ?? 'without a phase'}, not Copying` }];
    const job = jobNameFor(name, 'copy');
    return [
      { kind: 'create-job', run: name, job },
      { kind: 'record-started', run: name, job, deadline: copyDeadline(state.model, state.now) },
    ];
  }

  const model = run.spec.model;
  if (copy?.finished) return replayOutcome(run, name);
  if (status.phase !== 'Copying') return [{ kind: 'ignore', reason: `run is ${status.phase ?? 'without a phase'}; a late copy Job changes nothing` }];

  const verdict = judgeCopy(input.evidence, name, model);
  if (verdict.ok) {
    return [
      { kind: 'record-copied', run: name, artifact: verdict.artifact, message: verdict.message },
      { kind: 'reply-copied', data: { model, run: name, ...verdict.artifact } },
    ];
  }
  return [
    { kind: 'fail-run', run: name, reason: verdict.reason, message: verdict.message },
    { kind: 'reply-run-failed', data: { model, run: name, step: 'copy', reason: verdict.reason, message: verdict.message } },
  ];
}

type CopyVerdict =
  | { ok: true; artifact: { path: string; bytes: number; sha256: string }; message: string }
  | { ok: false; reason: CopyFailureReason; message: string };

/** Fail closed: only a Complete Job whose result proves model.pkl arrived with a verified sha256 is a copy. */
export function judgeCopy(evidence: CopyEvidence, run: string, model: string): CopyVerdict {
  const jobFailure = evidence.succeeded ? undefined : `job ${evidence.job} failed${evidence.failure ? `: ${evidence.failure}` : ''}`;
  if (evidence.result === undefined) {
    const problem = evidence.problem ?? `job ${evidence.job} left no result`;
    return { ok: false, reason: jobFailure ? 'job-failed' : 'no-result', message: clip(jobFailure ? `${jobFailure}; ${problem}` : problem) };
  }
  const parsed = CopyResult.safeParse(evidence.result);
  if (!parsed.success) return { ok: false, reason: 'invalid-result', message: clip(`copy result does not match the copy schema: ${describeIssues(parsed.error, undefined, 3)}`) };
  const result = parsed.data;
  if (!result.ok) return { ok: false, reason: 'copy-failed', message: clip(`copy failed: ${result.error ?? 'no error given'}${jobFailure ? `; ${jobFailure}` : ''}`) };
  if (jobFailure) return { ok: false, reason: 'job-failed', message: clip(`${jobFailure} although its result says ok`) };
  const folder = `.runs/${run}/${model}`;
  if (result.path !== folder) return { ok: false, reason: 'invalid-result', message: clip(`copy result path ${JSON.stringify(result.path)} is not ${folder}`) };
  if (!result.sha256 || !SHA256.test(result.sha256)) return { ok: false, reason: 'invalid-result', message: 'copy result has no valid sha256 of model.pkl' };
  const pkl = result.files?.find((f) => f.name === 'model.pkl');
  if (!pkl) return { ok: false, reason: 'invalid-result', message: 'copy result does not list model.pkl' };
  if (pkl.sha256 !== result.sha256) return { ok: false, reason: 'invalid-result', message: 'copy result sha256 of model.pkl is inconsistent' };
  return {
    ok: true,
    artifact: { path: artifactPathOf(run, model), bytes: pkl.bytes, sha256: pkl.sha256 },
    message: `copied ${result.files?.length ?? 0} files (${result.bytes ?? pkl.bytes} bytes); model.pkl sha256 verified`,
  };
}

/**
 * The outcome was recorded by an earlier delivery. Re-emit it (same deterministic id) so a reply lost to a crash
 * is recovered, but only while the gate has not started; otherwise stay silent.
 */
function replayOutcome(run: ModelRun, name: string): CopyAction[] {
  const status = run.status ?? {};
  const copy = status.steps?.copy;
  const model = run.spec.model;
  if (copy?.outcome === 'copied') {
    if (status.steps?.gate?.started) return [{ kind: 'ignore', reason: 'copy done; gate already started' }];
    const a = status.artifact;
    if (!a?.path || a.bytes === undefined || !a.sha256) return [{ kind: 'ignore', reason: 'copy done but the recorded artifact is incomplete' }];
    return [{ kind: 'reply-copied', data: { model, run: name, path: a.path, bytes: a.bytes, sha256: a.sha256 } }];
  }
  const reason = CopyFailureReasons.find((r) => r === copy?.outcome);
  if (reason) return [{ kind: 'reply-run-failed', data: { model, run: name, step: 'copy', reason, message: copy?.message ?? 'copy failed' } }];
  return [{ kind: 'ignore', reason: `copy already finished (${copy?.outcome ?? 'no outcome'})` }];
}

/** Job output and conditions are cluster text of any length: one line, bounded (events/text.ts). */
function clip(text: string): string {
  return clipText(text, SUMMARY_MAX, { oneLine: true });
}
