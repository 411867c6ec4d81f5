// `mlops dev` shortens the catalog's deadlines so that a hanging step ends the run in seconds, not hours (the
// `deadline` scenario finishes within a minute). Only ever shorter than the catalog says; fractional minutes are
// fine in-process (the functions get this catalog object; nothing re-validates it).
import type { Catalog, CatalogModel } from '../runtime/catalog.ts';

type Deadlines = CatalogModel['deadlines'];

/** Seconds per step in dev. Verification keeps room for a rollout's ready delay and drain. */
export const DEV_DEADLINE_SECONDS = { trainingMinutes: 20, copyMinutes: 120, gateMinutes: 120, promoteMinutes: 120, verifyMinutes: 180 } as const satisfies Record<keyof Deadlines, number>;

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
