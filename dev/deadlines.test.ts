import { loadCatalog } from '../runtime/catalog.ts';
import { nvjManifest } from '../functions/start-training/manifests.ts';
import { trainingDeadline } from '../functions/start-training/decide.ts';
import type { ModelRun } from '../runtime/resources.ts';
import { DEV_DEADLINE_SECONDS, shortenDeadlines } from './deadlines.ts';

describe('mlops dev deadlines', () => {
  const catalog = loadCatalog('config/models.yaml');
  const { catalog: short, summary } = shortenDeadlines(catalog);

  test('every step gets at most the dev budget, never more than the catalog says, and the summary names them', () => {
    expect(summary).toBe('training 1m, copy 2m, gate 2m, promote 2m, verify 3m');
    for (const [i, m] of short.models.entries()) {
      const orig = catalog.models[i]!;
      for (const key of Object.keys(DEV_DEADLINE_SECONDS) as (keyof typeof DEV_DEADLINE_SECONDS)[]) {
        expect(m.deadlines[key]).toBe(Math.min(orig.deadlines[key], DEV_DEADLINE_SECONDS[key] / 60));
      }
    }
    const tight = shortenDeadlines({ models: [{ ...catalog.models[0]!, deadlines: { ...catalog.models[0]!.deadlines, gateMinutes: 1 } }] });
    expect(tight.catalog.models[0]?.deadlines.gateMinutes).toBe(1);
  });

  test('the shortened training deadline is 60 s from the start and the NVJ timeout still matches its CRD pattern', () => {
    const model = short.models[0]!;
    const from = new Date('2026-11-22T10:00:00.000Z');
    expect(trainingDeadline(model, from)).toBe('2026-11-22T10:01:00.000Z');
    const run = { metadata: { name: 'r', uid: 'u' }, spec: { model: model.name, trigger: 'manual', profile: 'cpu' } } as unknown as ModelRun;
    const timeout = (nvjManifest(run, model).spec as { timeout: string }).timeout;
    expect(timeout).toMatch(/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/); // config/crds/notebookvalidationjobs.mlops.mlops.dev.yaml
  });
});
