// Day-2 operations end to end (docs/day2.md): the local system (real functions, local broker, emulator enforcing
// the rendered Roles, simulated operator / Job runner / KServe) driven by the `mlops pause|resume|pin|unpin|rollback`
// code with the local kubeconfig. The same walk-through is `mlops dev --scenario day2 --once`.
import { DEV_NAMESPACE, startLocal } from '../dev/local.ts';
import { runDay2 } from '../dev/day2.ts';
import { loadCatalog } from '../runtime/catalog.ts';
import type { ModelRun } from '../runtime/resources.ts';

const catalog = loadCatalog('config/models.yaml');

describe('day-2 operations on the local system', () => {
  test('pause skips every trigger and says who/why, resume trains; pin trains and gates without promoting; a manual rollback to a kept release is verified; one to a release not kept is refused', async () => {
    const lines: string[] = [];
    const local = await startLocal({ catalog, scenario: 'happy', env: {} });
    try {
      const checks = await runDay2(local, catalog, { model: 'anomaly-detector', print: (l) => lines.push(l) });
      expect(checks.map((c) => c.what)).toEqual([
        'paused: every trigger skipped, saying who and why',
        'resumed: the next tick trains and serves',
        'pinned: trains and gates, not promoted',
        'unpinned: the next run is promoted',
        'manual rollback to a kept release: verified',
        'rollback to a release not kept: refused',
      ]);
      expect(checks.filter((c) => !c.ok).map((c) => `${c.what}: ${c.detail}`)).toEqual([]);
      // The record a person reads afterwards.
      const runs = local.emulator.store.list({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun' }, { namespace: DEV_NAMESPACE }) as unknown as ModelRun[];
      const pinned = runs.find((r) => r.status?.release?.pinned);
      expect(pinned?.status?.message).toMatch(/^approved but not promoted: release anomaly-detector-[0-9a-f]{10} pinned by admin at /);
      const rollback = runs.find((r) => r.spec.trigger === 'manual-rollback');
      expect(rollback?.spec).toMatchObject({ requestedBy: 'admin', rollback: { release: expect.stringMatching(/^anomaly-detector-/) } });
      expect(rollback?.metadata.labels).toMatchObject({ 'mlops.dev/trigger': 'manual-rollback' });
    } finally {
      await local.close();
    }
  }, 300_000);
});
