import { z } from 'zod';
import { TrainingRequested } from '../events/index.ts';
import { ConflictError, type KubePort } from './kube.ts';
import { Annotations, Labels, MANAGER, lockNameFor } from './labels.ts';
import { Resources } from './resources.ts';

// The per-model lock: one coordination.k8s.io/v1 Lease `model-lock-<model>`, created atomically (create is the
// compare-and-swap), holder = ModelRun name, deleted when the run ends. A `queue-latest` model parks the newest
// waiting request on the Lease; whoever frees the lock gets it back to re-submit.

export interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; creationTimestamp?: string | Date };
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string | Date; renewTime?: string | Date };
  [key: string]: unknown;
}

export type AcquireResult = { acquired: true } | { acquired: false; holder: string; lease: LeaseObject };

export async function acquireLock(kube: KubePort, model: string, run: string, durationSeconds: number, now: Date): Promise<AcquireResult> {
  const name = lockNameFor(model);
  const created = await kube.create<LeaseObject>(Resources.lease, {
    metadata: { name, labels: { [Labels.managedBy]: MANAGER, [Labels.model]: model, [Labels.step]: 'lock' } },
    spec: { holderIdentity: run, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now) },
  });
  if (created.created) return { acquired: true };
  const lease = await kube.get<LeaseObject>(Resources.lease, name);
  if (!lease) throw new ConflictError(`lock ${name} vanished while being acquired`); // freed meanwhile: retry
  const holder = lease.spec?.holderIdentity ?? '';
  // Redelivery of the request that already holds the lock (crash between lock and ModelRun) is ours.
  return holder === run ? { acquired: true } : { acquired: false, holder, lease };
}

/** Park `request` as the newest waiting one (latest wins). Optimistic: a conflict is retryable. */
export async function enqueueOnLock(kube: KubePort, lease: LeaseObject, request: TrainingRequested): Promise<void> {
  const annotations = { ...(lease.metadata?.annotations ?? {}), [Annotations.queuedRequest]: JSON.stringify(request) };
  await kube.replace(Resources.lease, { ...lease, metadata: { ...lease.metadata, annotations } });
}

/**
 * Free the lock if `run` holds it. A parked request is handed to `sendQueued` FIRST and the Lease, its only copy, is
 * deleted only after that send succeeded (a failed send throws and leaves the Lease for the redelivery). The delete
 * is preconditioned on the version read: a request parked in between, or a new run that took the lock over from
 * this finished one (start-training does that for a terminal holder), is never lost. Returns whether it freed it.
 */
export async function releaseLock(kube: KubePort, model: string, run: string, sendQueued?: (queued: TrainingRequested) => Promise<void>, attempts = 5): Promise<boolean> {
  const name = lockNameFor(model);
  for (let i = 0; ; i++) {
    const lease = await kube.get<LeaseObject>(Resources.lease, name);
    if (!lease || lease.spec?.holderIdentity !== run) return false;
    const queued = parseQueued(lease);
    if (queued && sendQueued) await sendQueued(queued);
    const rv = lease.metadata?.resourceVersion;
    try {
      await kube.delete(Resources.lease, name, rv ? { preconditions: { resourceVersion: rv } } : {});
      return true;
    } catch (err) {
      // Changed since we read it (a newer request parked, or taken over): read again and decide again.
      if (!(err instanceof ConflictError) || i >= attempts - 1) throw err;
    }
  }
}

/**
 * Take over a Lease whose holder has finished (its run is terminal but the lock was not yet freed, e.g. while the
 * finisher is sending the parked request). Compare-and-swap on the version read; the parked request is kept unless it
 * is the very request taking over. Returns false when the Lease changed meanwhile (decide again).
 */
export async function takeOverLock(kube: KubePort, lease: LeaseObject, run: string, now: Date, isSameRequest: (queued: TrainingRequested) => boolean): Promise<boolean> {
  const queued = parseQueued(lease);
  const annotations = { ...(lease.metadata?.annotations ?? {}) };
  if (queued && isSameRequest(queued)) delete annotations[Annotations.queuedRequest];
  try {
    await kube.replace(Resources.lease, {
      ...lease,
      metadata: { ...lease.metadata, annotations },
      spec: { ...lease.spec, holderIdentity: run, acquireTime: microTime(now), renewTime: microTime(now) },
    });
    return true;
  } catch (err) {
    if (err instanceof ConflictError) return false;
    throw err;
  }
}

export function parseQueued(lease: LeaseObject): TrainingRequested | undefined {
  const raw = lease.metadata?.annotations?.[Annotations.queuedRequest];
  if (!raw) return undefined;
  try {
    const parsed = TrainingRequested.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch { return undefined; }
}

export function leaseExpired(lease: LeaseObject, now: Date): boolean {
  const renew = lease.spec?.renewTime ?? lease.spec?.acquireTime;
  const duration = lease.spec?.leaseDurationSeconds;
  if (!renew || !duration) return false;
  return new Date(renew).getTime() + duration * 1000 < now.getTime();
}

/** Leases carry RFC 3339 MicroTime. */
export const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export const LeaseHolder = z.string();
