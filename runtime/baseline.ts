// One-line summary of the gate's comparison with the served release (config/jobs/gate.py `baseline`, docs/gate.md),
// for `mlops runs` and the rejection message. Reads the report leniently: on the ModelRun it is preserve-unknown.

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): string => (typeof v === 'number' ? String(v) : '?');
const worst = (v: unknown): number | undefined => (Array.isArray(v) ? v.reduce<number | undefined>((m, x) => (typeof x === 'number' && (m === undefined || x > m) ? x : m), undefined) : undefined);

export function baselineSummary(report: unknown): string | undefined {
  if (!isRec(report) || !isRec(report.baseline)) return undefined;
  const b = report.baseline;
  if (typeof b.skipped === 'string') return `baseline: ${b.skipped}`;
  const served = isRec(b.served) ? b.served : {};
  const reference = isRec(b.reference) ? b.reference : {};
  const t = isRec(b.thresholds) ? b.thresholds : {};
  const rows = `${num(reference.rows)} reference rows${reference.targets === true ? ' with targets' : ''}`;
  if (served.state === 'none') return `baseline: nothing served, comparison skipped (${rows})`;
  if (served.state === 'placeholder') return `baseline: served release ${typeof served.release === 'string' ? served.release : '?'} is a placeholder, comparison skipped`;
  const parts: string[] = [];
  const c = isRec(b.comparison) ? b.comparison : undefined;
  if (c && typeof c.agreement === 'number') {
    parts.push(`agreement ${num(c.agreement)} (min ${num(t.minAgreement)})`);
    parts.push(`anomaly rate ${num(c.servedRate)} → ${num(c.candidateRate)} (max change ${num(t.maxRateChange)})`);
  } else if (c) {
    parts.push(`largest relative change ${num(worst(c.relativeChange))} (max ${num(t.maxRelativeChange)})`);
  }
  const m = isRec(b.metricChanges) ? b.metricChanges : undefined;
  if (served.state === 'archived') parts.push('metric regression skipped (archived release, no metrics)');
  else if (m) {
    const values = Object.values(m).flatMap((v): unknown[] => (Array.isArray(v) ? (v as unknown[]) : [v])).filter((v): v is number => typeof v === 'number');
    parts.push(`worst metric regression ${num(values.length ? Math.max(...values) : undefined)} (max ${num(t.maxMetricRegression)})`);
  }
  const advisory = Array.isArray(b.advisory) && b.advisory.length > 0 ? `; advisory: ${b.advisory.join(', ')}` : '';
  const what = typeof served.release === 'string' ? `served release ${served.release}` : 'the served model';
  return `baseline vs ${what}${served.state === 'archived' ? ' (archived)' : ''} on ${rows}: ${parts.join(', ')}${advisory}`;
}

// The typed status.gate.baseline kube-state-metrics reads (config/crds/modelrun.yaml, docs/monitoring.md): the
// report's numbers re-shaped into arrays of labelled values, since the report itself is preserve-unknown.

/** Each baseline check: the number gate.py compared with its threshold (config/jobs/gate.py check_baseline_*). */
const MEASURES = [
  { check: 'baseline-agreement', measure: 'agreement', threshold: 'minAgreement' },
  { check: 'baseline-rate', measure: 'rateChange', threshold: 'maxRateChange' },
  { check: 'baseline-change', measure: 'relativeChange', threshold: 'maxRelativeChange' },
  { check: 'baseline-metrics', measure: 'metricRegression', threshold: 'maxMetricRegression' },
] as const;

const SERVED_STATES = ['none', 'placeholder', 'archived', 'release'] as const;
type ServedState = (typeof SERVED_STATES)[number];
const isServedState = (v: unknown): v is ServedState => typeof v === 'string' && (SERVED_STATES as readonly string[]).includes(v);
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export interface BaselineCheckStatus {
  check: string;
  measure: string;
  value?: number;
  threshold?: number;
  worst?: string;
  advisory?: boolean;
  ok: boolean;
}
export interface BaselineMetricStatus { model: 'candidate' | 'served'; metric: string; output?: string; value: number }
export interface BaselineStatus {
  served?: ServedState;
  release?: string;
  referenceRows?: number;
  trigger?: string;
  skipped?: string;
  checks?: BaselineCheckStatus[];
  metrics?: BaselineMetricStatus[];
}

/** The worst metric regression and its name, as gate.py's worst_regression names it (`precision`, `mae[3]`). */
export function worstRegression(changes: unknown): { name: string; value: number } | undefined {
  if (!isRec(changes)) return undefined;
  let best: { name: string; value: number } | undefined;
  for (const [name, v] of Object.entries(changes)) {
    const items: Array<[string, unknown]> = Array.isArray(v) ? v.map((x, j): [string, unknown] => [`${name}[${j}]`, x]) : [[name, v]];
    for (const [n, x] of items) if (finite(x) && (best === undefined || x > best.value)) best = { name: n, value: x };
  }
  return best;
}

function measured(check: string, b: Rec): { value?: number; worst?: string } {
  const c = isRec(b.comparison) ? b.comparison : {};
  switch (check) {
    case 'baseline-agreement': return finite(c.agreement) ? { value: c.agreement } : {};
    case 'baseline-rate': return finite(c.rateChange) ? { value: Math.abs(c.rateChange) } : {};
    case 'baseline-change': { const w = worst(c.relativeChange); return w !== undefined ? { value: w } : {}; }
    default: { const w = worstRegression(b.metricChanges); return w ? { value: w.value, worst: w.name } : {}; }
  }
}

function metricList(model: 'candidate' | 'served', m: unknown): BaselineMetricStatus[] {
  if (!isRec(m)) return [];
  return Object.entries(m).flatMap(([metric, v]): BaselineMetricStatus[] => {
    if (Array.isArray(v)) return v.flatMap((x, j) => (finite(x) ? [{ model, metric, output: String(j), value: x }] : []));
    return finite(v) ? [{ model, metric, value: v }] : [];
  });
}

/**
 * status.gate.baseline from the gate report and its checks; undefined when the gate did not compare (no
 * `baseline` in the report). A check the report does not carry is left out; a number the gate could not
 * compute (nothing served, an archived release's metrics) is left out, so its series is absent, not zero.
 */
export function baselineStatus(report: unknown, checks: ReadonlyArray<{ name: string; ok: boolean }>): BaselineStatus | undefined {
  if (!isRec(report) || !isRec(report.baseline)) return undefined;
  const b = report.baseline;
  if (typeof b.skipped === 'string') return { skipped: b.skipped };
  const served = isRec(b.served) ? b.served : {};
  const reference = isRec(b.reference) ? b.reference : {};
  const thresholds = isRec(b.thresholds) ? b.thresholds : {};
  const advisory = Array.isArray(b.advisory) ? b.advisory : [];
  const out: BaselineStatus = {};
  if (isServedState(served.state)) out.served = served.state;
  if (typeof served.release === 'string') out.release = served.release;
  if (typeof reference.rows === 'number' && Number.isInteger(reference.rows)) out.referenceRows = reference.rows;
  if (typeof b.trigger === 'string') out.trigger = b.trigger;
  const comparable = served.state === 'release' || served.state === 'archived';
  out.checks = MEASURES.flatMap((m): BaselineCheckStatus[] => {
    const check = checks.find((c) => c.name === m.check);
    if (!check) return [];
    const threshold = thresholds[m.threshold];
    const archivedMetrics = m.check === 'baseline-metrics' && served.state === 'archived';
    return [{
      check: m.check, measure: m.measure,
      ...(comparable && !archivedMetrics ? measured(m.check, b) : {}),
      ...(finite(threshold) ? { threshold } : {}),
      ...(advisory.includes(m.check) ? { advisory: true } : {}),
      ok: check.ok,
    }];
  });
  out.metrics = [...metricList('candidate', b.candidate), ...metricList('served', b.servedMetrics)];
  return out;
}
