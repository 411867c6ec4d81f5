// The floor for the skip path: a bare faas-js-runtime CloudEvent function that makes the same two API reads as
// start-training's skip path (the request's ModelRun, absent; the model's lock Lease, held) through
// @kubernetes/client-node, over a kept connection, and answers training.skipped. Whatever the bundled step costs
// beyond this is ours (the adapter, zod, the catalog, decide), not the API's or the runtime's.
import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { CloudEvent } from 'cloudevents';

const MODEL = 'anomaly-detector';
/** @type {k8s.KubernetesObjectApi | undefined} */
let objects;
let namespace = 'default';

export function init() {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(process.env.KUBECONFIG ?? '');
  // client-node 2.x builds an undici Agent per request; one per cluster keeps the connection (as runtime/kube.ts does).
  const target = /** @type {{ createDispatcher?: (cluster: { server?: string } | null, options: unknown) => unknown }} */ (/** @type {unknown} */ (kc));
  const original = target.createDispatcher?.bind(kc);
  if (original) {
    const cache = new Map();
    target.createDispatcher = (cluster, options) => {
      const key = JSON.stringify([cluster?.server ?? '', options]);
      if (!cache.has(key)) cache.set(key, original(cluster, options));
      return cache.get(key);
    };
  }
  namespace = process.env.NAMESPACE ?? namespace;
  objects = k8s.KubernetesObjectApi.makeApiClient(kc);
}

/** @param {{ apiVersion: string; kind: string; name: string }} ref */
async function read(ref) {
  try {
    return await objects?.read({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace } });
  } catch (err) {
    if (/** @type {{ code?: unknown }} */ (err)?.code === 404) return undefined;
    throw err;
  }
}

/** @type {import('faas-js-runtime').CloudEventFunction<unknown, unknown>} */
export const handle = async (_context, event) => {
  const run = `${MODEL}-${createHash('sha256').update(`manual/${event?.id ?? ''}`).digest('hex').slice(0, 10)}`;
  const [found, lease] = await Promise.all([
    read({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', name: run }),
    read({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name: `model-lock-${MODEL}` }),
  ]);
  return new CloudEvent({
    type: 'dev.mlops.training.skipped.v1', source: '/bench/reads', id: `${event?.id ?? ''}-skipped`,
    data: { model: MODEL, run, reason: found ? 'duplicate' : 'already-running', holder: /** @type {{ spec?: { holderIdentity?: string } } | undefined} */ (lease)?.spec?.holderIdentity },
  });
};
