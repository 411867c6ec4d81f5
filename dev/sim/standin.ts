// The stand-in model used where sklearn is missing (`mlops dev` on a fresh laptop): a self-describing file
// and ONE deterministic prediction function shared by the gate report and the predictor simulator, so the
// endpoint check compares like with like. Never produced outside the simulators.
import { createHash } from 'node:crypto';
import type { OutputSpec } from '../../runtime/catalog.ts';

export const STANDIN_MAGIC = 'MLOPS-STANDIN';
const STANDIN_PREFIX = Buffer.from(STANDIN_MAGIC);

export interface StandinHeader {
  kind: 'mlops-standin';
  model: string;
  features: number;
  output: OutputSpec;
  /** A broken notebook's output: no predict method, like a pickled dict. */
  bad?: 'dict';
  createdAt: string;
}

/** `MLOPS-STANDIN\n` + JSON, padded past 1000 bytes so it clears the size minimum like a real model. */
export function standinModelBytes(header: Omit<StandinHeader, 'kind' | 'createdAt'>, now: Date = new Date()): Buffer {
  const body = JSON.stringify({ kind: 'mlops-standin', ...header, createdAt: now.toISOString() } satisfies StandinHeader);
  const padding = ' '.repeat(Math.max(0, 1200 - body.length));
  return Buffer.from(`${STANDIN_MAGIC}\n${body}${padding}\n`);
}

export function isStandin(bytes: Buffer): boolean {
  return bytes.length >= STANDIN_PREFIX.length && bytes.subarray(0, STANDIN_PREFIX.length).equals(STANDIN_PREFIX);
}

/** The header of a stand-in file, or undefined for anything else. */
export function parseStandin(bytes: Buffer): StandinHeader | undefined {
  if (!isStandin(bytes)) return undefined;
  try {
    const parsed = JSON.parse(bytes.subarray(STANDIN_PREFIX.length).toString('utf8').trim()) as StandinHeader;
    return parsed.kind === 'mlops-standin' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

const round9 = (v: number): number => Math.round(v * 1e9) / 1e9;

/** Labels: the first declared label for every row (1 for [1,-1]); regression: each output = row sum rounded to 9 digits. */
export function standinPredict(output: OutputSpec, rows: number[][]): Array<number | string | number[]> {
  if (output.kind === 'label') {
    const first = output.labels[0] ?? 1;
    return rows.map(() => first);
  }
  return rows.map((row) => {
    const sum = round9(row.reduce((a, b) => a + b, 0));
    return Array.from({ length: output.width }, () => sum);
  });
}

/**
 * Seeded probe rows (rows × features, normal values rounded to 6 decimals). Not numpy's generator, but
 * deterministic in SEED, which is all the stand-in report promises.
 */
export function standinProbeRows(seed: number, rows: number, features: number): number[][] {
  let counter = 0;
  const uniform = (): number => {
    const h = createHash('sha256').update(`${seed}:${counter++}`).digest();
    return (h.readUInt32BE(0) + 1) / 4294967297;
  };
  const normal = (): number => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return Array.from({ length: rows }, () => Array.from({ length: features }, () => Math.round(normal() * 1e6) / 1e6));
}
