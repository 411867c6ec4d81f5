import type { DeploymentFailureReason } from '../../events/index.ts';
import type { CatalogModel } from '../../runtime/catalog.ts';
import type { ModelRun, RollbackCheck } from '../../runtime/resources.ts';
import { createdForRestore, type RestoredProbe } from '../../runtime/rollback.ts';
import { releaseOfRun } from '../../runtime/modelrun.ts';

// Pure decisions for verify-endpoint: whether the new release's pods can be probed yet, what to send them,
// and how their answers compare with the gate's expected outputs. No I/O, no clock.

/** A predictor pod as far as verification cares. */
export interface PodView {
  name: string;
  /** `mlops.dev/model-release` annotation (KServe copies it from spec.predictor.annotations). */
  release?: string;
  /** Ready, not terminating and with an IP: traffic reaches it. */
  serving: boolean;
  /** `metadata.deletionTimestamp` set: on its way out (listed through its grace period), never counted. */
  terminating?: boolean;
  ip?: string;
  port: number;
  /** metadata.creationTimestamp (ISO): a restored release's rollout pods are those created since restoring began. */
  created?: string;
}

export type VerifyTrigger = 'restarted' | 'pod';

export interface ProbeTarget { pod: string; url: string }

export type VerifyAction =
  | { kind: 'ignore'; reason: string }
  | { kind: 'wait'; reason: string }
  | { kind: 'probe'; targets: ProbeTarget[]; body: unknown }
  | { kind: 'record-verified'; pods: string[]; matched: number; message: string }
  | { kind: 'record-failed'; reason: DeploymentFailureReason; message: string }
  /** The verdict `verified` is recorded but the run was not ended (a crash in between): end it now. */
  | { kind: 'finish-verified'; pods: number }
  | { kind: 'reply-verified'; pods: string[]; matched: number; verifiedAt?: string }
  /**
   * The verdict on a restored release (runtime/rollback.ts): record it once, announce it, end the run — RolledBack
   * when verified, Failed (loudly, nothing else changed) when not. A recorded verdict concludes the same way.
   */
  | { kind: 'conclude-restore'; release: string; verified: boolean; check: RollbackCheck; message: string; pods: number }
  | { kind: 'reply-failed'; reason: DeploymentFailureReason; message: string };

export interface ProbeSpec { rows: number[][]; expected: unknown[] }

const FAILURE_REASONS: readonly string[] = ['mismatch', 'http-error', 'model-missing', 'no-ready-pod', 'timeout'];

/** What a recorded verdict looks like in `steps.verify` (outcome = `verified` or the failure reason). */
export function verifiedMessage(pods: string[], matched: number): string {
  return `verified ${matched} predictions on ${pods.length} new pod(s): ${pods.join(', ')}`;
}

function parseVerifiedMessage(message: string | undefined): { pods: string[]; matched: number } {
  const m = /^verified (\d+) predictions on \d+ new pod\(s\): (.*)$/.exec(message ?? '');
  if (!m) return { pods: [], matched: 0 };
  return { matched: Number(m[1]), pods: (m[2] ?? '').split(', ').filter(Boolean) };
}

/** The recorded verdict as the event it caused, for redeliveries (same id: receivers de-duplicate). */
export function recordedReply(run: ModelRun): VerifyAction | undefined {
  const verify = run.status?.steps?.verify;
  if (!verify?.finished) return undefined;
  if (verify.outcome === 'verified') {
    return { kind: 'reply-verified', ...parseVerifiedMessage(verify.message), verifiedAt: new Date(verify.finished).toISOString() };
  }
  if (verify.outcome && FAILURE_REASONS.includes(verify.outcome)) {
    return { kind: 'reply-failed', reason: verify.outcome as DeploymentFailureReason, message: verify.message ?? verify.outcome };
  }
  return undefined;
}

export function podUrl(pod: PodView, model: CatalogModel): string {
  const host = pod.ip?.includes(':') ? `[${pod.ip}]` : pod.ip ?? '';
  const isvc = encodeURIComponent(model.inferenceService);
  return model.protocol === 'v2' ? `http://${host}:${pod.port}/v2/models/${isvc}/infer` : `http://${host}:${pod.port}/v1/models/${isvc}:predict`;
}

export function requestBody(rows: number[][], protocol: 'v1' | 'v2'): unknown {
  if (protocol === 'v1') return { instances: rows };
  return { inputs: [{ name: 'input-0', shape: [rows.length, rows[0]?.length ?? 0], datatype: 'FP64', data: rows.flat() }] };
}

/** Before probing: is the run ours to verify, and are the new pods the only ones serving? */
export function decideVerify(trigger: VerifyTrigger, run: ModelRun | undefined, pods: PodView[], model: CatalogModel): VerifyAction[] {
  if (!run) return [{ kind: 'ignore', reason: 'no such ModelRun' }];
  const name = run.metadata.name ?? '';
  const status = run.status ?? {};
  const recorded = recordedReply(run);
  if (recorded?.kind === 'reply-verified' && status.phase === 'Verifying') {
    return [{ kind: 'finish-verified', pods: recorded.pods.length }, recorded];
  }
  if (recorded) {
    // Pod updates never stop; only a redelivered predictor.restarted gets the verdict again, and a failure only
    // until the rollback has started.
    if (trigger === 'pod') return [{ kind: 'ignore', reason: 'already verified' }];
    if (recorded.kind === 'reply-failed' && (status.steps?.rollback?.started || status.phase !== 'Verifying')) return [{ kind: 'ignore', reason: 'rollback under way' }];
    return [recorded];
  }
  if (status.phase !== 'Verifying') return [{ kind: 'ignore', reason: `run is ${status.phase ?? 'without a phase'}, not Verifying` }];
  const probe = probeOf(run);
  if (!probe) {
    const message = `run ${name} records no probe rows and expected outputs to verify with`;
    return [{ kind: 'record-failed', reason: 'mismatch', message }, { kind: 'reply-failed', reason: 'mismatch', message }];
  }
  // Only the run's own release counts (docs/verification.md). Old pods — still Ready while a Deployment surges or
  // a Serverless Revision drains, or terminating through their grace period — neither block nor get probed.
  // A manual rollback's release is the kept one it serves again, not its own name (docs/day2.md).
  const release = releaseOfRun(run);
  const mine = pods.filter((p) => p.release === release && !p.terminating);
  const fresh = mine.filter((p) => p.serving).sort((a, b) => a.name.localeCompare(b.name));
  const starting = mine.filter((p) => !p.serving).map((p) => p.name).sort();
  if (fresh.length === 0) return [{ kind: 'wait', reason: `no Ready pod of release ${release} yet` }];
  // A new pod not Ready (still starting, or restarting) is part of the release: wait for it rather than
  // conclude on some of the new pods. Its Ready update brings us back.
  if (starting.length > 0) return [{ kind: 'wait', reason: `new pods not Ready yet: ${starting.join(', ')}` }];
  return [{ kind: 'probe', targets: fresh.map((p) => ({ pod: p.name, url: podUrl(p, model) })), body: requestBody(probe.rows, model.protocol) }];
}

/**
 * After probing: a pod that could not be reached and is no longer serving now (it restarted, or went away)
 * says nothing about the release: wait for the next pod event instead of failing the release on it.
 */
export function unreachableButGone(outcomes: ProbeOutcome[], podsNow: PodView[]): VerifyAction | undefined {
  const serving = new Set(podsNow.filter((p) => p.serving && !p.terminating).map((p) => p.name));
  const gone = outcomes.filter((o) => o.kind === 'transport' && !serving.has(o.pod)).map((o) => o.pod).sort();
  return gone.length > 0 ? { kind: 'wait', reason: `probed pods stopped serving meanwhile: ${gone.join(', ')}` } : undefined;
}

function probeOf(run: ModelRun): ProbeSpec | undefined {
  const rows = run.status?.probe?.rows;
  const expected = run.status?.probe?.expected;
  if (!Array.isArray(rows) || !Array.isArray(expected) || rows.length === 0 || rows.length !== expected.length) return undefined;
  if (!rows.every((r): r is number[] => Array.isArray(r) && r.length > 0 && r.every((v) => typeof v === 'number'))) return undefined;
  return { rows, expected };
}

/** One pod's answer: the HTTP status and parsed JSON body (or text), or the transport error after retries. */
export type ProbeOutcome =
  | { pod: string; kind: 'answer'; status: number; body: unknown }
  | { pod: string; kind: 'transport'; error: string };

/** The predictions in a V1 or V2 answer, one entry per row, or why there are none. */
export function extractPredictions(body: unknown, protocol: 'v1' | 'v2'): { ok: true; predictions: unknown[] } | { ok: false; why: string } {
  if (protocol === 'v1') {
    const predictions = (body as { predictions?: unknown } | null)?.predictions;
    return Array.isArray(predictions) ? { ok: true, predictions } : { ok: false, why: 'answer has no "predictions" array' };
  }
  const output = (body as { outputs?: unknown } | null)?.outputs;
  const first = Array.isArray(output) ? (output[0] as { shape?: unknown; data?: unknown } | undefined) : undefined;
  if (!first || !Array.isArray(first.data)) return { ok: false, why: 'answer has no outputs[0].data' };
  const shape = Array.isArray(first.shape) && first.shape.every((n) => Number.isInteger(n)) ? (first.shape as number[]) : [first.data.length];
  const width = shape.slice(1).reduce((a, b) => a * b, 1);
  if (shape.length < 2 || width === 1) return { ok: true, predictions: first.data };
  const predictions: unknown[] = [];
  for (let i = 0; i < first.data.length; i += width) predictions.push(first.data.slice(i, i + width));
  return { ok: true, predictions };
}

const unwrap = (v: unknown): unknown => (Array.isArray(v) && v.length === 1 ? unwrap(v[0]) : v);
const asFloats = (v: unknown): number[] | undefined => {
  const arr = Array.isArray(v) ? v : [v];
  return arr.every((x) => typeof x === 'number' && Number.isFinite(x)) ? (arr as number[]) : undefined;
};

/** Labels exactly; floats within `tolerance` relative plus `tolerance` absolute. */
export function predictionMatches(expected: unknown, got: unknown, model: CatalogModel): boolean {
  if (model.output.kind === 'label') {
    const e = unwrap(expected);
    const g = unwrap(got);
    return (typeof e === 'number' || typeof e === 'string') && e === g;
  }
  const e = asFloats(expected);
  const g = asFloats(got);
  if (!e || !g || e.length !== g.length) return false;
  const tol = model.gate.tolerance;
  return e.every((x, i) => Math.abs(x - (g[i] as number)) <= tol + tol * Math.abs(x));
}

const show = (v: unknown): string => {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
};

type PodVerdict = { ok: true; matched: number } | { ok: false; reason: DeploymentFailureReason; message: string };

function judgePod(outcome: ProbeOutcome, probe: ProbeSpec, model: CatalogModel): PodVerdict {
  if (outcome.kind === 'transport') return { ok: false, reason: 'http-error', message: `pod ${outcome.pod}: ${outcome.error}` };
  const text = typeof outcome.body === 'string' ? outcome.body : JSON.stringify(outcome.body) ?? '';
  if (/does not exist/i.test(text) && (outcome.status < 200 || outcome.status >= 300 || typeof outcome.body === 'string')) {
    return { ok: false, reason: 'model-missing', message: `pod ${outcome.pod} has no model loaded (HTTP ${outcome.status}: ${text.slice(0, 200)})` };
  }
  if (outcome.status < 200 || outcome.status >= 300) return { ok: false, reason: 'http-error', message: `pod ${outcome.pod} answered HTTP ${outcome.status}: ${text.slice(0, 200)}` };
  const extracted = extractPredictions(outcome.body, model.protocol);
  if (!extracted.ok) return { ok: false, reason: 'http-error', message: `pod ${outcome.pod}: ${extracted.why}` };
  const got = extracted.predictions;
  if (got.length !== probe.expected.length) {
    return { ok: false, reason: 'mismatch', message: `pod ${outcome.pod} answered ${got.length} predictions for ${probe.expected.length} probe rows` };
  }
  const wrong = probe.expected.map((e, i) => ({ i, e, g: got[i] })).filter(({ e, g }) => !predictionMatches(e, g, model));
  if (wrong.length > 0) {
    const detail = wrong.slice(0, 3).map(({ i, e, g }) => `row ${i} expected ${show(e)}, got ${show(g)}`).join('; ');
    return { ok: false, reason: 'mismatch', message: `pod ${outcome.pod}: ${wrong.length} of ${got.length} predictions differ from the gate's: ${detail}` };
  }
  return { ok: true, matched: got.length };
}

const SEVERITY: readonly DeploymentFailureReason[] = ['model-missing', 'http-error', 'mismatch'];

/** Every probed pod must answer every row as the gate did; the most telling failure names the verdict. */
export function judge(outcomes: ProbeOutcome[], probe: ProbeSpec, model: CatalogModel): VerifyAction[] {
  const verdicts = outcomes.map((o) => ({ pod: o.pod, v: judgePod(o, probe, model) }));
  const failures = verdicts.flatMap(({ v }) => (v.ok ? [] : [v]));
  if (failures.length > 0 || outcomes.length === 0) {
    const worst = [...failures].sort((a, b) => SEVERITY.indexOf(a.reason) - SEVERITY.indexOf(b.reason))[0];
    const reason = worst?.reason ?? 'http-error';
    const message = failures.length > 0 ? failures.map((f) => f.message).join(' | ').slice(0, 2000) : 'no pod was probed';
    return [{ kind: 'record-failed', reason, message }, { kind: 'reply-failed', reason, message }];
  }
  const pods = verdicts.map((v) => v.pod);
  const matched = verdicts.reduce((n, { v }) => n + (v.ok ? v.matched : 0), 0);
  return [{ kind: 'record-verified', pods, matched, message: verifiedMessage(pods, matched) }, { kind: 'reply-verified', pods, matched }];
}

// ---------------------------------------------------------------------------------------------------
// A restored release (docs/run-lifecycle.md, "Rollback, verified like a promotion")

/**
 * Before probing a restored release R: the rollback rollout's new pods of R (created since status.rollback.startedAt,
 * not terminating) must all be Ready; older pods of R (a Serverless Revision still draining) and the failed release's
 * pods are never probed. `probe` is what R must answer (runtime/rollback.ts `restoredProbe`).
 */
export function decideRestore(run: ModelRun, pods: PodView[], model: CatalogModel, probe: RestoredProbe | undefined): VerifyAction[] {
  const rb = run.status?.rollback;
  if (run.status?.phase !== 'Verifying' || !rb) return [{ kind: 'ignore', reason: 'no rollback to verify' }];
  if (rb.verified !== undefined) {
    // Recorded but the run did not end (a crash in between): conclude from the record.
    return [{ kind: 'conclude-restore', release: rb.release, verified: rb.verified, check: rb.check ?? 'answers', message: rb.message ?? '', pods: 0 }];
  }
  if (!probe) {
    return [{ kind: 'conclude-restore', release: rb.release, verified: false, check: 'answers', message: `no probe rows to verify the restored release ${rb.release} with`, pods: 0 }];
  }
  const mine = pods.filter((p) => p.release === rb.release && !p.terminating && createdForRestore(p.created, rb.startedAt));
  const fresh = mine.filter((p) => p.serving).sort((a, b) => a.name.localeCompare(b.name));
  const starting = mine.filter((p) => !p.serving).map((p) => p.name).sort();
  if (fresh.length === 0) return [{ kind: 'wait', reason: `no Ready pod of the restored release ${rb.release} yet` }];
  if (starting.length > 0) return [{ kind: 'wait', reason: `restored pods not Ready yet: ${starting.join(', ')}` }];
  return [{ kind: 'probe', targets: fresh.map((p) => ({ pod: p.name, url: podUrl(p, model) })), body: requestBody(probe.rows, model.protocol) }];
}

/** One pod's answers are well-formed: one prediction per row, a declared label or `width` finite floats each. */
function wellFormed(outcome: ProbeOutcome, rows: number, model: CatalogModel): PodVerdict {
  if (outcome.kind === 'transport') return { ok: false, reason: 'http-error', message: `pod ${outcome.pod}: ${outcome.error}` };
  const text = typeof outcome.body === 'string' ? outcome.body : JSON.stringify(outcome.body) ?? '';
  if (outcome.status < 200 || outcome.status >= 300) return { ok: false, reason: 'http-error', message: `pod ${outcome.pod} answered HTTP ${outcome.status}: ${text.slice(0, 200)}` };
  const extracted = extractPredictions(outcome.body, model.protocol);
  if (!extracted.ok) return { ok: false, reason: 'http-error', message: `pod ${outcome.pod}: ${extracted.why}` };
  const got = extracted.predictions;
  if (got.length !== rows) return { ok: false, reason: 'mismatch', message: `pod ${outcome.pod} answered ${got.length} predictions for ${rows} probe rows` };
  const output = model.output;
  const bad = got.findIndex((g) => {
    if (output.kind === 'label') {
      const v = unwrap(g);
      return !((typeof v === 'number' || typeof v === 'string') && output.labels.includes(v));
    }
    return asFloats(g)?.length !== output.width;
  });
  if (bad >= 0) return { ok: false, reason: 'mismatch', message: `pod ${outcome.pod}: row ${bad} answered ${show(got[bad])}, not a ${output.kind === 'label' ? `label in ${show(output.labels)}` : `${output.width}-float prediction`}` };
  return { ok: true, matched: got.length };
}

/** The restored release's verdict: every probed pod answers as R's gate approved it (or, without a gate record, well-formed). */
export function judgeRestore(release: string, outcomes: ProbeOutcome[], probe: RestoredProbe, model: CatalogModel): VerifyAction[] {
  const verdicts = outcomes.map((o) => (probe.check === 'gate-probe' ? judgePod(o, probe, model) : wellFormed(o, probe.rows.length, model)));
  const failures = verdicts.flatMap((v) => (v.ok ? [] : [v.message]));
  const matched = verdicts.reduce((n, v) => n + (v.ok ? v.matched : 0), 0);
  const how = probe.check === 'gate-probe'
    ? `${matched} predictions matched ${release}'s gate record`
    : `${matched} well-formed predictions (no gate record of ${release}: answers checked, not values)`;
  if (failures.length > 0 || outcomes.length === 0) {
    const detail = failures.length > 0 ? failures.join(' | ').slice(0, 2000) : 'no pod was probed';
    return [{ kind: 'conclude-restore', release, verified: false, check: probe.check, message: detail, pods: outcomes.length }];
  }
  return [{ kind: 'conclude-restore', release, verified: true, check: probe.check, message: `verified on ${outcomes.length} new pod(s) ${outcomes.map((o) => o.pod).join(', ')}: ${how}`, pods: outcomes.length }];
}
