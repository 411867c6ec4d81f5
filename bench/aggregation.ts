// Measurement 5: 10,000 NVJs aggregated for Argo CD, measured by argocd-sync's own bench hook when it exists.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const AGGREGATION_HOOK = 'functions/argocd-sync/bench.ts';

export type AggregationOutcome =
  | { status: 'pending'; reason: string }
  | { status: 'measured'; n: number; figures: Record<string, unknown> }
  | { status: 'failed'; reason: string };

/** Calls `benchAggregation(n)` from functions/argocd-sync/bench.ts; `pending` while that file does not exist. */
export async function aggregationOnce(root: string, n: number): Promise<AggregationOutcome> {
  const file = join(root, AGGREGATION_HOOK);
  if (!existsSync(file)) return { status: 'pending', reason: `${AGGREGATION_HOOK} does not exist yet` };
  try {
    const mod = (await import(pathToFileURL(file).href)) as { benchAggregation?: (n: number) => unknown };
    if (typeof mod.benchAggregation !== 'function') return { status: 'pending', reason: `${AGGREGATION_HOOK} exports no benchAggregation(n)` };
    const figures = await mod.benchAggregation(n);
    return { status: 'measured', n, figures: (figures && typeof figures === 'object' ? figures : { value: figures }) as Record<string, unknown> };
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
