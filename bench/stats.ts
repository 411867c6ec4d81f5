// Small statistics over repeated measurements: every figure is reported as median (min/max) over runs.

export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error('no samples to summarize');
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), min: sorted[0] as number, max: sorted[sorted.length - 1] as number, runs: sorted.length };
}

/** Quantile of an ascending array, linear interpolation between closest ranks. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new Error('no samples');
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

export function ratio(value: number, baseline: number): number {
  return baseline === 0 ? Number.POSITIVE_INFINITY : value / baseline;
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** mulberry32, seedable (uniform in [0, 1)): one implementation, dev/emulator/faults.ts. */
import { prng } from '../dev/emulator/faults.ts';
export const seededRandom = prng;
