// `mlops dev` shortens the catalog's deadlines so that a hanging step ends the run in about a minute, not hours (the
// `deadline` scenario). Only ever shorter than the catalog says; fractional minutes are fine in-process (the
// functions get this catalog object; nothing re-validates it). Training keeps 60 s: the simulated notebook trains a
// real sklearn model (about 15 s for both models on an idle 2-core machine), and with 20 s a loaded machine let the
// watchdog fail a healthy run in Training (the verify-fail-rollback flake of the rollout matrix, reproduced with
// `mlops dev --once --scenario verify-fail-rollback --rollout raw --drain-seconds 20 --seed 1`).
import type { Catalog, CatalogModel } from '../runtime/catalog.ts';

type Deadlines = CatalogModel['deadlines'];

/** Seconds per step in dev. Verification keeps room for a rollout's ready delay and drain. */
export const DEV_DEADLINE_SECONDS = { trainingMinutes: 60, copyMinutes: 120, gateMinutes: 120, promoteMinutes: 120, verifyMinutes: 180 } as const satisfies Record<keyof Deadlines, number>;

const label = (key: keyof Deadlines): string => key.replace(/Minutes$/, '');
const human = (seconds: number): string => (seconds % 60 === 0 ? `${seconds / 60}m` : `${seconds}s`);

export function shortenDeadlines(catalog: Catalog): { catalog: Catalog; summary: string } {
  const models = catalog.models.map((m) => {
    const d = { ...m.deadlines };
    for (const key of Object.keys(DEV_DEADLINE_SECONDS) as (keyof Deadlines)[]) d[key] = Math.min(d[key], DEV_DEADLINE_SECONDS[key] / 60);
    return { ...m, deadlines: d };
  });
  const summary = (Object.keys(DEV_DEADLINE_SECONDS) as (keyof Deadlines)[]).map((k) => `${label(k)} ${human(DEV_DEADLINE_SECONDS[k])}`).join(', ');
  return { catalog: { ...catalog, models }, summary };
}
