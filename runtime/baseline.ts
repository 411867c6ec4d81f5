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
