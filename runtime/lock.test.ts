import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startTestCluster, type TestCluster } from '../test/kit.ts';
import type { TrainingRequested } from '../events/index.ts';
import { acquireLock, enqueueOnLock, parseQueued, releaseLock, type LeaseObject } from './lock.ts';
import { Resources } from './resources.ts';

// issue 12, "A queued request is lost: runtime/lock.ts deletes the Lease, which holds the only copy of the parked
// request, before runtime/finish.ts (and the watchdog) send it". The old releaseLock deleted first and returned the
// request; these fail on it: the Lease is gone after a failed send, and a send stopped dead finds nothing to resend.
describe('releaseLock keeps a parked request until it was sent', () => {
  let cluster: TestCluster;
  beforeAll(async () => { cluster = await startTestCluster(); });
  afterAll(async () => { await cluster.close(); });

  const parked: TrainingRequested = { model: 'm1', trigger: 'drift', reason: 'second alert' };
  const lease = async (model: string): Promise<LeaseObject | undefined> => cluster.kube.get<LeaseObject>(Resources.lease, `model-lock-${model}`);

  async function heldWithParked(model: string, run: string): Promise<void> {
    expect(await acquireLock(cluster.kube, model, run, 3600, new Date())).toEqual({ acquired: true });
    await enqueueOnLock(cluster.kube, (await lease(model))!, { ...parked, model });
  }

  test('bug: queued request lost — a failed send leaves the Lease (and the request on it) for the redelivery', async () => {
    await heldWithParked('m1', 'm1-run-a');
    await expect(releaseLock(cluster.kube, 'm1', 'm1-run-a', () => Promise.reject(new Error('broker unavailable')))).rejects.toThrow('broker unavailable');
    const kept = await lease('m1');
    expect(kept?.spec?.holderIdentity).toBe('m1-run-a');
    expect(parseQueued(kept!)).toEqual({ ...parked, model: 'm1' });
    // The redelivery sends it and only then frees the lock.
    const sent: TrainingRequested[] = [];
    expect(await releaseLock(cluster.kube, 'm1', 'm1-run-a', (q) => { sent.push(q); return Promise.resolve(); })).toBe(true);
    expect(sent).toEqual([{ ...parked, model: 'm1' }]);
    expect(await lease('m1')).toBeUndefined();
  });

  test('bug: queued request lost — a finisher stopped dead after the send, before the delete, sends it again (same request) next time', async () => {
    await heldWithParked('m2', 'm2-run-a');
    const sent: TrainingRequested[] = [];
    const stoppedAfterSend = async (q: TrainingRequested): Promise<void> => { sent.push(q); await Promise.reject(new Error('stopped dead')); };
    await expect(releaseLock(cluster.kube, 'm2', 'm2-run-a', stoppedAfterSend)).rejects.toThrow('stopped dead');
    expect(await releaseLock(cluster.kube, 'm2', 'm2-run-a', (q) => { sent.push(q); return Promise.resolve(); })).toBe(true);
    expect(sent).toEqual([{ ...parked, model: 'm2' }, { ...parked, model: 'm2' }]); // a duplicate (same event id downstream), never a loss
    expect(await lease('m2')).toBeUndefined();
  });
});
