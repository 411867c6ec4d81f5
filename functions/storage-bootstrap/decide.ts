import { z } from 'zod';
import type { StorageModelResult, StorageStage } from '../../events/index.ts';
import type { CatalogModel } from '../../runtime/catalog.ts';

// Pure decisions of storage-bootstrap (docs/storage.md "Bootstrap"): whether to run at all, and per S3 model what
// the next effect is. No I/O, no clock, no randomness: the caller passes `now` and what it read.

export type BootstrapTrigger = 'secret' | 'requested' | 'tick' | 'job';

/** The record in the `storage-bootstrap-status` ConfigMap (all strings there; `models` as JSON). */
export const BootstrapRecord = z.object({
  state: z.enum(['in-progress', 'validated', 'failed']),
  attempt: z.string().regex(/^[a-z0-9]{1,16}$/),
  startedAt: z.iso.datetime(),
  checkedAt: z.iso.datetime().optional(),
  /** resourceVersion of the storage Secret the attempt read: a different one is a reason to check again. */
  secretVersion: z.string().max(64).optional(),
  stage: z.string().max(32).optional(),
  reason: z.string().max(64).optional(),
  message: z.string().max(2000).optional(),
  /** Objects this attempt uploaded (model names): their predictors are rolled once. */
  uploaded: z.string().max(50_000).optional(),
  models: z.string().max(200_000).optional(),
}).strict();
export type BootstrapRecord = z.infer<typeof BootstrapRecord>;

export const RECHECK_AFTER_MS = 24 * 3600 * 1000;
/** A failed check is retried by the tick this long after (not every minute: each retry may notify). */
export const RETRY_FAILED_AFTER_MS = 5 * 60 * 1000;
/** An attempt in progress longer than this was abandoned (a function stopped mid-way): start again. */
export const STALE_ATTEMPT_MS = 30 * 60 * 1000;

export type StartDecision =
  | { kind: 'start'; attempt: string; why: string }
  | { kind: 'continue'; attempt: string }
  | { kind: 'skip'; reason: string };

export function attemptId(now: Date): string {
  return now.getTime().toString(36);
}

export function decideStart(trigger: BootstrapTrigger, record: BootstrapRecord | undefined, secretVersion: string | undefined, now: Date): StartDecision {
  const start = (why: string): StartDecision => ({ kind: 'start', attempt: attemptId(now), why });
  const changed = record?.secretVersion !== secretVersion;
  if (record?.state === 'in-progress') {
    const age = now.getTime() - Date.parse(record.startedAt);
    if (trigger === 'secret' && changed) return start('the storage Secret changed during a check');
    if (trigger === 'requested' && age >= RETRY_FAILED_AFTER_MS) return start('requested');
    if (age < STALE_ATTEMPT_MS) return { kind: 'continue', attempt: record.attempt };
    return start('the previous check was abandoned');
  }
  if (trigger === 'requested') return start('requested');
  if (!record) return trigger === 'job' ? { kind: 'skip', reason: 'no check in progress' } : start('never checked');
  if (changed && trigger !== 'job') return start('the storage Secret changed');
  if (trigger === 'tick') {
    const since = now.getTime() - Date.parse(record.checkedAt ?? record.startedAt);
    if (record.state === 'failed' && since >= RETRY_FAILED_AFTER_MS) return start('the last check failed');
    if (since >= RECHECK_AFTER_MS) return start('the last check is older than a day');
  }
  return { kind: 'skip', reason: `last check ${record.state}, nothing changed` };
}

/** `s3://bucket/key` → the object a predictor loads (a folder URI means its `model.pkl`), or why not. */
export function servedObject(storageUri: string | undefined): { ok: true; bucket: string; key: string } | { ok: false; why: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/.exec(storageUri ?? '');
  if (!m) return { ok: false, why: `storageUri ${JSON.stringify(storageUri ?? '')} is not s3://<bucket>/<key>` };
  const path = (m[2] ?? '').replace(/\/+$/, '');
  if (path.split('/').some((s) => s === '..' || s === '.' || s === '')) return { ok: false, why: `storageUri ${JSON.stringify(storageUri)} has an empty or relative segment` };
  return { ok: true, bucket: m[1] ?? '', key: /\.(pkl|joblib)$/.test(path) ? path : `${path}/model.pkl` };
}

/** The first bytes of a joblib/pickle file: PROTO opcode 0x80 with protocol 2..5 (what sklearn models are saved as). */
export function looksLikeModel(head: Buffer | undefined): boolean {
  return !!head && head.length >= 2 && head[0] === 0x80 && (head[1] ?? 0) >= 2 && (head[1] ?? 0) <= 5;
}

export type JobView =
  | { state: 'none' }
  | { state: 'running' }
  | { state: 'failed'; message: string }
  | { state: 'succeeded'; sha256?: string; bytes?: number; problem?: string };

/** What was read for one S3 model. */
export interface ModelView {
  model: CatalogModel;
  served: ReturnType<typeof servedObject>;
  /** The served object: absent, or its first bytes. */
  object: { exists: false } | { exists: true; head: Buffer | undefined };
  job: JobView;
}

export type ModelStep =
  | { kind: 'fail'; stage: StorageStage; reason: string; message: string }
  | { kind: 'create-job' }
  | { kind: 'wait'; why: string }
  | { kind: 'promote-staging'; sha256: string; bytes: number }
  | { kind: 'object-ready' };

export function decideModel(v: ModelView): ModelStep {
  if (!v.served.ok) return { kind: 'fail', stage: 'reconcile', reason: 'no-s3-storage-uri', message: `${v.model.name}: InferenceService ${v.model.inferenceService}: ${v.served.why}` };
  const where = `s3://${v.served.bucket}/${v.served.key}`;
  if (v.object.exists) {
    // Never overwritten; but a served object that is not a model is named, not served around.
    return looksLikeModel(v.object.head) ? { kind: 'object-ready' }
      : { kind: 'fail', stage: 'placeholder', reason: 'not-a-model', message: `${v.model.name}: ${where} exists but is not a model (not a pickle/joblib file); left untouched` };
  }
  switch (v.job.state) {
    case 'none': return { kind: 'create-job' };
    case 'running': return { kind: 'wait', why: `${v.model.name}: placeholder Job running` };
    case 'failed': return { kind: 'fail', stage: 'placeholder', reason: 'job-failed', message: `${v.model.name}: placeholder Job failed: ${v.job.message}` };
    case 'succeeded':
      if (v.job.problem || !v.job.sha256 || v.job.bytes === undefined) {
        return { kind: 'fail', stage: 'placeholder', reason: 'job-failed', message: `${v.model.name}: placeholder Job reported no upload${v.job.problem ? `: ${v.job.problem}` : ''}` };
      }
      return { kind: 'promote-staging', sha256: v.job.sha256, bytes: v.job.bytes };
  }
}

export interface ServingView {
  model: CatalogModel;
  /** Whether the InferenceService reports Ready. */
  ready: boolean;
  /** The value of the bootstrap annotation on spec.predictor.annotations now. */
  annotation: string | undefined;
  /** The value it should have when this bootstrap uploaded the object (its sha256 prefix), else undefined. */
  uploadedMark: string | undefined;
  /** Serving pods carrying `wantMark` (or any serving pod when no mark is wanted). */
  servingPods: number;
}

export type ServingStep = { kind: 'roll'; value: string } | { kind: 'wait'; why: string } | { kind: 'probe' };

/**
 * Roll the predictor (merge patch of one spec.predictor.annotations value, as restart-predictor does) when its
 * pods started before the object existed or it is not Ready; probe once a pod that loaded it serves.
 */
export function decideServing(v: ServingView, attempt: string): ServingStep {
  const want = v.uploadedMark ?? (v.ready ? undefined : `retry-${attempt}`);
  if (want !== undefined && v.annotation !== want) return { kind: 'roll', value: want };
  if (v.servingPods === 0) return { kind: 'wait', why: `${v.model.name}: no serving predictor pod${want ? ' with the new model' : ''} yet` };
  return { kind: 'probe' };
}

/** Deterministic probe rows of the declared width (what the predictor is asked; its answer's shape is checked). */
export function probeRows(features: number, rows = 2): number[][] {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: features }, (_, c) => ((r * 31 + c * 17) % 13) / 13 - 0.5));
}

/** A prediction answer is right when it has one entry per row of the declared kind and width. */
export function predictionsFit(predictions: unknown[], rows: number, model: CatalogModel): { ok: true } | { ok: false; why: string } {
  if (predictions.length !== rows) return { ok: false, why: `${predictions.length} predictions for ${rows} rows` };
  for (const p of predictions) {
    if (model.output.kind === 'label') {
      const v = Array.isArray(p) && p.length === 1 ? (p[0] as unknown) : p;
      if (!(model.output.labels as unknown[]).some((l) => l === v || String(l) === String(v))) return { ok: false, why: `prediction ${JSON.stringify(p).slice(0, 80)} is not one of ${JSON.stringify(model.output.labels)}` };
    } else {
      const width = model.output.width;
      const arr = Array.isArray(p) ? p : [p];
      if (arr.length !== width || !arr.every((x) => typeof x === 'number' && Number.isFinite(x))) return { ok: false, why: `prediction ${JSON.stringify(p).slice(0, 80)} is not ${width} number(s)` };
    }
  }
  return { ok: true };
}

export type { StorageModelResult };
