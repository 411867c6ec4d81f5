// The gate report `mlops dev` writes where the real gate cannot run (no sklearn) or has nothing real to
// load (a stand-in model). Same shape as config/jobs/gate.py's result plus `"simulated": true`; bytes and
// sha256 are real, the checks are honest about the stand-in (a broken one still fails). Only the Job
// runner in `dev` mode ever produces it.
import { createHash } from 'node:crypto';
import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { OutputSpec } from '../../runtime/catalog.ts';
import { parseStandin, standinPredict, standinProbeRows } from './standin.ts';

export const GATE_CHECK_NAMES = ['exists', 'min-bytes', 'sha256', 'load', 'has-predict', 'predict', 'output-shape', 'output-values'] as const;
const PREREQUISITES: Record<string, readonly string[]> = {
  exists: [], 'min-bytes': ['exists'], sha256: ['exists'], load: ['min-bytes', 'sha256'], 'has-predict': ['load'],
  predict: ['has-predict'], 'output-shape': ['predict'], 'output-values': ['output-shape'],
};
const MAX_RESULT_BYTES = 4096;

interface Check { name: string; ok: boolean; message: string; observed: unknown }

export interface StandinGateReport {
  ok: boolean;
  checks: Check[];
  bytes: number | null;
  sha256: string | null;
  loadSeconds: number | null;
  probe: { rows: number[][]; expected: unknown[] };
  python: null;
  sklearn: null;
  simulated: true;
  truncated?: true;
  error?: string;
}

function int(env: Record<string, string>, name: string, fallback?: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') {
    if (fallback === undefined) throw new Error(`${name} is required`);
    return fallback;
  }
  if (!/^[0-9]+$/.test(raw.trim())) throw new Error(`${name} must be an integer`);
  return Number(raw.trim());
}

/** The declared output spec from the gate env (LABELS or OUTPUT_WIDTH). */
function declaredOutput(env: Record<string, string>): OutputSpec {
  if (env['OUTPUT_KIND'] === 'label') return { kind: 'label', labels: JSON.parse(env['LABELS'] ?? '') as Array<number | string> };
  if (env['OUTPUT_KIND'] === 'regression') return { kind: 'regression', width: int(env, 'OUTPUT_WIDTH') };
  throw new Error('OUTPUT_KIND must be "label" or "regression"');
}

/** The report for the gate env (paths already local). Never throws: a bad env is an `error` report. */
export async function standinGateReport(env: Record<string, string>): Promise<StandinGateReport> {
  const report: StandinGateReport = { ok: false, checks: [], bytes: null, sha256: null, loadSeconds: null, probe: { rows: [], expected: [] }, python: null, sklearn: null, simulated: true };
  let settings: { dir: string; features: number; minBytes: number; rows: number; seed: number; output: OutputSpec };
  try {
    settings = { dir: env['MODEL_DIR'] ?? '', features: int(env, 'FEATURES'), minBytes: int(env, 'MIN_BYTES'), rows: int(env, 'PROBE_ROWS', 8), seed: int(env, 'SEED', 42), output: declaredOutput(env) };
    if (!settings.dir) throw new Error('MODEL_DIR is required');
  } catch (err) {
    return { ...report, error: `usage: ${(err as Error).message}` };
  }
  const file = path.join(settings.dir, 'model.pkl');
  const status = new Map<string, boolean>();
  const record = (name: string, ok: boolean, message: string, observed: unknown = null): void => {
    status.set(name, ok);
    report.checks.push({ name, ok, message, observed });
  };
  let data: Buffer | undefined;
  let header: ReturnType<typeof parseStandin>;
  let rows: number[][] = [];
  let outputs: unknown[] = [];
  const checks: Record<string, () => Promise<void> | void> = {
    exists: async () => {
      try {
        const info = await lstat(file);
        if (!info.isFile()) return record('exists', false, info.isSymbolicLink() ? 'model.pkl is a symlink' : 'model.pkl is not a regular file', false);
        report.bytes = info.size;
        record('exists', true, 'model.pkl found', true);
      } catch {
        record('exists', false, `model.pkl not found in ${settings.dir}`, false);
      }
    },
    'min-bytes': () => {
      const bytes = report.bytes ?? 0;
      const ok = bytes >= settings.minBytes;
      record('min-bytes', ok, `${bytes} bytes ${ok ? '>=' : '<'} minimum ${settings.minBytes}`, bytes);
    },
    sha256: async () => {
      data = await readFile(file);
      report.bytes = data.length;
      report.sha256 = createHash('sha256').update(data).digest('hex');
      record('sha256', true, 'computed', report.sha256);
    },
    load: () => {
      header = data ? parseStandin(data) : undefined;
      report.loadSeconds = 0.001;
      if (!header) return record('load', false, 'simulated: not a stand-in model and sklearn is not available', report.loadSeconds);
      record('load', true, 'loaded stand-in model (simulated)', report.loadSeconds);
    },
    'has-predict': () => {
      if (header?.bad === 'dict') return record('has-predict', false, 'dict has no predict method', 'dict');
      record('has-predict', true, 'StandinModel.predict', 'StandinModel');
    },
    predict: () => {
      rows = standinProbeRows(settings.seed, settings.rows, settings.features);
      const observed = { features: settings.features, rows: settings.rows, modelFeatures: header?.features };
      if (header && header.features !== settings.features) {
        return record('predict', false, `ValueError: X has ${settings.features} features, but the model expects ${header.features}`, observed);
      }
      outputs = standinPredict(header?.output ?? settings.output, rows);
      record('predict', true, `predicted ${settings.rows} rows`, observed);
    },
    'output-shape': () => {
      const width = Array.isArray(outputs[0]) ? (outputs[0] as unknown[]).length : undefined;
      const shape = width === undefined ? [outputs.length] : [outputs.length, width];
      const want = settings.output.kind === 'label' ? [settings.rows] : [settings.rows, settings.output.width];
      const ok = JSON.stringify(shape) === JSON.stringify(want);
      record('output-shape', ok, `shape ${JSON.stringify(shape)}${ok ? '' : `, expected ${JSON.stringify(want)}`}`, shape);
    },
    'output-values': () => {
      const output = settings.output;
      if (output.kind === 'label') {
        const bad = outputs.filter((v) => !output.labels.some((l) => l === v));
        return record('output-values', bad.length === 0, bad.length ? `${bad.length} of ${outputs.length} values not in ${JSON.stringify(output.labels)}` : `all values in ${JSON.stringify(output.labels)}`, [...new Set(outputs)].slice(0, 10));
      }
      const nonFinite = (outputs as number[][]).flat().filter((v) => !Number.isFinite(v)).length;
      record('output-values', nonFinite === 0, nonFinite ? `${nonFinite} outputs are not finite` : `all ${outputs.length * output.width} outputs finite`, { nonFinite });
    },
  };
  for (const name of GATE_CHECK_NAMES) {
    const failed = (PREREQUISITES[name] ?? []).find((p) => !status.get(p));
    if (failed) {
      record(name, false, `skipped: ${failed} failed`);
      continue;
    }
    try {
      await checks[name]?.();
    } catch (err) {
      record(name, false, `${(err as Error).name}: ${(err as Error).message}`.slice(0, 240));
    }
  }
  const coreOk = report.checks.length === GATE_CHECK_NAMES.length && report.checks.every((c) => c.ok);
  // The serving-runtime and baseline checks (docs/gate.md) need a real pickle and sklearn: a stand-in cannot
  // provide their evidence, so they fail (missing evidence is a fail), saying why.
  const extra = [
    ...(env['SERVING_SKLEARN'] ? ['serving-runtime'] : []),
    ...(env['BASELINE'] ? ['reference-data', ...(settings.output.kind === 'label' ? ['baseline-agreement', 'baseline-rate'] : ['baseline-change']), 'baseline-metrics'] : []),
  ];
  for (const name of extra) record(name, false, 'simulated: needs sklearn and a real model');
  report.ok = coreOk && extra.length === 0;
  if (coreOk) report.probe = { rows, expected: outputs };
  return report;
}

/** The report as the termination message: trailing probe rows dropped (and `truncated`) to fit 4 KiB, like gate.py. */
export function fitReport(report: StandinGateReport): string {
  let text = JSON.stringify(report);
  if (Buffer.byteLength(text) <= MAX_RESULT_BYTES) return text;
  const rows = [...report.probe.rows];
  const expected = [...report.probe.expected];
  const shrunk: StandinGateReport = { ...report, truncated: true };
  do {
    rows.pop();
    expected.pop();
    text = JSON.stringify({ ...shrunk, probe: { rows, expected } });
  } while (rows.length > 0 && Buffer.byteLength(text) > MAX_RESULT_BYTES);
  return text;
}
