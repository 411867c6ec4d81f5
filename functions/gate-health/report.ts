import type { JobEvidence } from '../../runtime/jobs.ts';
import { z } from 'zod';
import type { GateCheck, Probe } from '../../events/index.ts';
import { CHECK_NAME_MAX, SUMMARY_MAX, clip as clipText, describeIssues } from '../../events/index.ts';
import { baselineSummary } from '../../runtime/baseline.ts';
import type { CatalogModel } from '../../runtime/catalog.ts';

// The gate Job's report (config/jobs/gate.py) and the fail-closed verdict on it. Pure: no I/O, no clock.
// Anything short of complete, consistent evidence that every expected check passed is a rejection that
// names each failed check (synthetic ones for evidence that is missing rather than failed).

export const EXPECTED_CHECKS = ['exists', 'min-bytes', 'sha256', 'load', 'has-predict', 'predict', 'output-shape', 'output-values'] as const;

/** The checks the catalog asks for on top of EXPECTED_CHECKS (config/jobs/gate.py: SERVING_SKLEARN, BASELINE). */
export function expectedChecks(model: CatalogModel): string[] {
  const names: string[] = [...EXPECTED_CHECKS];
  if (model.serving?.sklearnVersion) names.push('serving-runtime');
  if (model.gate.baseline && model.referenceData) {
    names.push('reference-data', ...(model.output.kind === 'label' ? ['baseline-agreement', 'baseline-rate'] : ['baseline-change']), 'baseline-metrics');
  }
  return names;
}

const Num = z.number();
const Metrics = z.object({
  mae: z.array(Num).max(1000).optional(),
  rmse: z.array(Num).max(1000).optional(),
  r2: z.array(Num).max(1000).optional(),
  precision: Num.optional(),
  recall: Num.optional(),
  anomalyRate: Num.optional(),
}).strict();
const Threshold = Num.nullable();

/** gate.py's comparison with the served release (docs/gate.md). */
export const BaselineReport = z.union([
  z.object({ skipped: z.string().max(4096) }).strict(),
  z.object({
    served: z.object({ state: z.enum(['none', 'placeholder', 'archived', 'release']), release: z.string().max(63).nullable() }).strict(),
    reference: z.object({ rows: z.int().min(1), targets: z.boolean() }).strict(),
    trigger: z.string().max(64).nullable(),
    advisory: z.array(z.string().max(64)).max(8),
    thresholds: z.object({ minAgreement: Threshold, maxRateChange: Threshold, maxRelativeChange: Threshold, maxMetricRegression: Threshold }).strict(),
    candidate: Metrics.optional(),
    servedMetrics: Metrics.optional(),
    comparison: z.object({
      agreement: Num.optional(), candidateRate: Num.optional(), servedRate: Num.optional(), rateChange: Num.optional(),
      meanAbsChange: z.array(Num).max(1000).optional(), relativeChange: z.array(Num).max(1000).optional(),
    }).strict().optional(),
    metricChanges: z.object({
      precision: Num.optional(), recall: Num.optional(),
      mae: z.array(Num).max(1000).optional(), rmse: z.array(Num).max(1000).optional(), r2: z.array(Num).max(1000).optional(),
    }).strict().optional(),
  }).strict(),
]);
export type BaselineReport = z.infer<typeof BaselineReport>;

/** Names of checks the function adds itself when the evidence, not a model property, is at fault. */
export const SyntheticChecks = {
  job: 'job',
  report: 'report',
  probe: 'probe',
  simulated: 'simulated',
  artifact: 'artifact',
} as const;

// A previous release's load time this many times faster than the candidate's is worth a warning.
export const LOAD_SLOWDOWN_FACTOR = 10;
// Below this the load time is noise (cache, scheduling), never a warning.
export const LOAD_NOISE_SECONDS = 0.5;
// A model shrinking to less than this fraction of the served one is worth a warning.
export const SHRINK_FRACTION = 0.1;

const SHA256 = /^[a-f0-9]{64}$/;

export const ReportCheck = z.object({
  name: z.string().min(1).max(128),
  ok: z.boolean(),
  message: z.string().max(4096).optional(),
  observed: z.unknown().optional(),
}).strict();
export type ReportCheck = z.infer<typeof ReportCheck>;

/** Exactly what gate.py emits; an unknown key means a script we do not know, so the report is refused. */
export const GateReport = z.object({
  ok: z.boolean(),
  checks: z.array(ReportCheck).max(32),
  bytes: z.int().min(0).nullable(),
  sha256: z.string().max(128).nullable(),
  loadSeconds: z.number().min(0).nullable(),
  probe: z.object({ rows: z.array(z.array(z.number())).max(256), expected: z.array(z.unknown()).max(256) }).strict(),
  python: z.string().max(64).nullable().optional(),
  sklearn: z.string().max(64).nullable().optional(),
  truncated: z.literal(true).optional(),
  error: z.string().max(4096).optional(),
  runtime: z.object({ pickled: z.array(z.string().max(64)).max(16), serving: z.string().max(64), gate: z.string().max(64).nullable() }).strict().optional(),
  baseline: BaselineReport.optional(),
  notebookMetrics: z.union([z.object({ metrics: z.record(z.string().max(64), Num) }).strict(), z.object({ invalid: z.string().max(4096) }).strict()]).optional(),
  /** Set only by the `mlops dev` simulator on a stand-in artifact. */
  simulated: z.boolean().optional(),
}).strict();
export type GateReport = z.infer<typeof GateReport>;

/** The finished gate Job as the function sees it (runtime/jobs.ts readJobResult plus the Job's condition). */
export type GateEvidence = JobEvidence;

export interface GateContext {
  model: CatalogModel;
  mode: 'cluster' | 'dev';
  /** What the copy step recorded for this run (GPU profile): the gate must have read the same bytes. */
  copied?: { bytes?: number | undefined; sha256?: string | undefined };
  /** The served release's recorded gate evidence, for warnings. */
  served?: ServedRelease;
}

export interface ServedRelease {
  run: string;
  loadSeconds?: number;
  bytes?: number;
}

export type GateVerdict =
  | {
      verdict: 'approved';
      checks: GateCheck[];
      report: Record<string, unknown>;
      probe: Probe;
      bytes: number;
      sha256: string;
      simulated: boolean;
      warnings: string[];
      message: string;
    }
  | {
      verdict: 'rejected';
      checks: GateCheck[];
      failed: string[];
      report: Record<string, unknown>;
      simulated: boolean;
      message: string;
    };

/** Decide on a finished gate Job. Approval needs every piece of evidence present, consistent and ok. */
export function evaluateGate(evidence: GateEvidence, ctx: GateContext): GateVerdict {
  const { model } = ctx;
  const failures = new Map<string, string[]>();
  const fail = (name: string, message: string): void => {
    const list = failures.get(name) ?? [];
    if (!list.includes(message)) list.push(message);
    failures.set(name, list);
  };

  if (!evidence.succeeded) fail(SyntheticChecks.job, `job ${evidence.job} failed${evidence.failure ? `: ${evidence.failure}` : ''}`);

  const raw = evidence.result;
  const salvaged = salvageChecks(raw);
  let report: GateReport | undefined;
  if (raw === undefined) {
    fail(SyntheticChecks.report, evidence.problem ?? `job ${evidence.job} left no report`);
  } else {
    const parsed = GateReport.safeParse(raw);
    if (parsed.success) report = parsed.data;
    else fail(SyntheticChecks.report, `report does not match the gate schema: ${describeIssues(parsed.error, undefined, 3)}`);
    const error = isRecord(raw) && typeof raw.error === 'string' ? raw.error : undefined;
    if (error) fail(SyntheticChecks.report, `gate error: ${error}`);
  }

  // Every expected check exactly once; a missing one is a failed one.
  const seen = new Set<string>();
  for (const c of salvaged) {
    if (seen.has(c.name)) fail(c.name, `check ${c.name} reported more than once`);
    seen.add(c.name);
    if (!c.ok) fail(c.name, c.message ?? 'failed');
  }
  for (const name of expectedChecks(model)) if (!seen.has(name)) fail(name, 'missing from the report');

  const simulated = isRecord(raw) && raw.simulated === true;
  if (simulated && ctx.mode !== 'dev') fail(SyntheticChecks.simulated, 'a simulated gate report is accepted only under mlops dev');

  if (report) {
    if (report.bytes === null) fail('min-bytes', 'report has no byte count');
    else if (report.bytes < model.gate.minBytes) fail('min-bytes', `${report.bytes} bytes is below the catalog minimum ${model.gate.minBytes}`);
    if (report.sha256 === null || !SHA256.test(report.sha256)) fail('sha256', 'report sha256 is not 64 lower-case hex characters');
    const shaObserved = salvaged.find((c) => c.name === 'sha256')?.observed;
    if (typeof shaObserved === 'string' && report.sha256 !== null && shaObserved !== report.sha256) fail('sha256', 'sha256 check and report disagree');
    if (report.loadSeconds === null) fail('load', 'report has no load time');
    else if (report.loadSeconds > model.gate.maxLoadSeconds) fail('load', `load took ${report.loadSeconds}s, over the ${model.gate.maxLoadSeconds}s limit`);
    if (ctx.copied?.sha256 && report.sha256 !== ctx.copied.sha256) fail(SyntheticChecks.artifact, `gated sha256 ${String(report.sha256).slice(0, 12)}… differs from the copied ${ctx.copied.sha256.slice(0, 12)}…`);
    if (ctx.copied?.bytes !== undefined && report.bytes !== ctx.copied.bytes) fail(SyntheticChecks.artifact, `gated ${String(report.bytes)} bytes differ from the copied ${ctx.copied.bytes}`);
    for (const problem of probeProblems(report.probe, model)) fail(SyntheticChecks.probe, problem);
    if (!report.ok && failures.size === 0) fail(SyntheticChecks.report, 'report verdict is ok: false although no check failed');
  }

  const checks = mergeChecks(salvaged, failures);
  const failed = checks.filter((c) => !c.ok).map((c) => c.name);
  const reportRecord = reportForStatus(raw, evidence.problem);

  if (failed.length === 0 && report && report.ok && report.sha256 !== null && report.bytes !== null) {
    const probe = { rows: report.probe.rows, expected: report.probe.expected } as Probe;
    return {
      verdict: 'approved', checks, report: reportRecord, probe, bytes: report.bytes, sha256: report.sha256, simulated,
      warnings: servedWarnings(report, ctx.served),
      message: `all ${checks.length} checks passed${simulated ? ' (simulated)' : ''}; ${probe.rows.length} probe rows recorded`,
    };
  }
  const details = failed.map((n) => `${n}: ${checks.find((c) => c.name === n)?.message ?? 'failed'}`);
  const baseline = failed.some((n) => n.startsWith('baseline-')) ? baselineSummary(raw) : undefined;
  const message = clip(`gate rejected the model; failed checks: ${failed.join(', ')} (${details.join('; ')})${baseline ? `; ${baseline}` : ''}`);
  return { verdict: 'rejected', checks, failed, report: reportRecord, simulated, message };
}

/** Checks as reported, read leniently so a rejection can name them even when the report is malformed. */
function salvageChecks(raw: unknown): ReportCheck[] {
  if (!isRecord(raw) || !Array.isArray(raw.checks)) return [];
  const out: ReportCheck[] = [];
  for (const c of raw.checks.slice(0, 32)) {
    if (!isRecord(c) || typeof c.name !== 'string' || c.name.length === 0) continue;
    const name = clipText(c.name, CHECK_NAME_MAX, { oneLine: true });
    if (name === '') continue;
    // A check without a boolean `ok: true` is not a pass.
    const check: ReportCheck = { name, ok: c.ok === true };
    if (typeof c.message === 'string') check.message = clip(c.message);
    if (c.observed !== undefined) check.observed = c.observed;
    out.push(check);
  }
  return out;
}

function mergeChecks(salvaged: ReportCheck[], failures: Map<string, string[]>): GateCheck[] {
  const out: GateCheck[] = [];
  const byName = new Map<string, GateCheck>();
  for (const c of salvaged) {
    if (byName.has(c.name)) continue;
    const check: GateCheck = { name: c.name, ok: c.ok };
    if (c.message !== undefined) check.message = c.message;
    if (c.observed !== undefined) check.observed = c.observed;
    byName.set(c.name, check);
    out.push(check);
  }
  for (const [name, messages] of failures) {
    const message = clip(messages.join('; '));
    const existing = byName.get(name);
    if (existing) {
      // A check the script failed carries its own message first (see the salvage loop in evaluateGate).
      existing.message = message;
      existing.ok = false;
    } else {
      const check: GateCheck = { name, ok: false, message };
      byName.set(name, check);
      out.push(check);
    }
  }
  return out.slice(0, 64);
}

function probeProblems(probe: GateReport['probe'], model: CatalogModel): string[] {
  const problems: string[] = [];
  const { rows, expected } = probe;
  const features = model.features.count;
  if (rows.length === 0) return ['no probe rows: nothing the endpoint check could compare against'];
  if (rows.length > model.gate.probeRows) problems.push(`${rows.length} probe rows, more than the ${model.gate.probeRows} asked for`);
  const badRow = rows.findIndex((r) => r.length !== features || !r.every(Number.isFinite));
  if (badRow >= 0) problems.push(`probe row ${badRow} has ${rows[badRow]?.length ?? 0} values, expected ${features} finite numbers`);
  if (expected.length !== rows.length) problems.push(`${expected.length} expected outputs for ${rows.length} probe rows`);
  const output = model.output;
  if (output.kind === 'label') {
    const bad = expected.findIndex((v) => !output.labels.some((l) => l === v));
    if (bad >= 0) problems.push(`expected output ${bad} (${JSON.stringify(expected[bad])?.slice(0, 40)}) is not one of ${JSON.stringify(output.labels).slice(0, 80)}`);
  } else {
    const bad = expected.findIndex((v) => !Array.isArray(v) || v.length !== output.width || !v.every((x) => typeof x === 'number' && Number.isFinite(x)));
    if (bad >= 0) problems.push(`expected output ${bad} is not ${output.width} finite numbers`);
  }
  return problems;
}

function servedWarnings(report: GateReport, served: ServedRelease | undefined): string[] {
  if (!served) return [];
  const warnings: string[] = [];
  const load = report.loadSeconds;
  if (load !== null && served.loadSeconds !== undefined && load >= LOAD_NOISE_SECONDS && load >= LOAD_SLOWDOWN_FACTOR * served.loadSeconds) {
    warnings.push(`gate: model loads in ${load}s, at least ${LOAD_SLOWDOWN_FACTOR}x slower than the served release ${served.run} (${served.loadSeconds}s)`);
  }
  if (report.bytes !== null && served.bytes !== undefined && served.bytes > 0 && report.bytes < SHRINK_FRACTION * served.bytes) {
    warnings.push(`gate: model is ${report.bytes} bytes, more than 90% smaller than the served release ${served.run} (${served.bytes} bytes)`);
  }
  return warnings;
}

/** The report as recorded on the ModelRun: the JSON as emitted minus the probe (kept in status.probe). */
function reportForStatus(raw: unknown, problem: string | undefined): Record<string, unknown> {
  if (isRecord(raw)) {
    const rest = { ...raw };
    delete rest.probe;
    return rest;
  }
  if (raw === undefined) return problem ? { problem } : {};
  return { invalid: clip(JSON.stringify(raw)) };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Job output and conditions are cluster text of any length: one line, bounded (events/text.ts). */
function clip(text: string): string {
  return clipText(text, SUMMARY_MAX, { oneLine: true });
}
