// Measurement 5: 10,000 NVJs aggregated for Argo CD (bench/argocd-aggregation.ts), repeated and summarized.
import { benchAggregation } from './argocd-aggregation.ts';

export type AggregationOutcome =
  | { status: 'measured'; n: number; figures: Record<string, unknown> }
  | { status: 'failed'; reason: string };

/** One `benchAggregation(n)`; a failure is reported as such, never as figures. */
export async function aggregationOnce(n: number): Promise<AggregationOutcome> {
  try {
    const figures = await benchAggregation(n);
    return { status: 'measured', n, figures: { ...figures } };
  } catch (err) {
    return { status: 'failed', reason: err instanceof Error ? err.message : String(err) };
  }
}

/** Numeric leaves of an object, by dotted path (to summarize repeated aggregation figures). */
export function numericLeaves(value: unknown, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {};
  if (typeof value === 'number' && Number.isFinite(value)) out[prefix || 'value'] = value;
  else if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) Object.assign(out, numericLeaves(v, prefix ? `${prefix}.${k}` : k));
  }
  return out;
}
