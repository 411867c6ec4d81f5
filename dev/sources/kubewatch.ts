// A WatchFn over a real Kubernetes API (or the local emulator) with @kubernetes/client-node, like an
// informer: list (existing objects arrive as ADDED), then HTTP watch streams that resume from the last
// resourceVersion and re-list after 410 Gone.
import { KubeConfig, KubernetesObjectApi, Watch } from '@kubernetes/client-node';
import type { V1APIResource } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { WatchFn } from './apiserver.ts';

/** Plurals of the kinds this project watches; anything else is looked up through discovery. */
const KNOWN_PLURALS: Record<string, string> = {
  'v1/Pod': 'pods',
  'v1/Event': 'events',
  'v1/ConfigMap': 'configmaps',
  'v1/Service': 'services',
  'v1/Endpoints': 'endpoints',
  'batch/v1/Job': 'jobs',
  'apps/v1/Deployment': 'deployments',
  'coordination.k8s.io/v1/Lease': 'leases',
  'mlops.mlops.dev/v1alpha1/NotebookValidationJob': 'notebookvalidationjobs',
  'lifecycle.mlops.dev/v1alpha1/ModelRun': 'modelruns',
  'serving.kserve.io/v1beta1/InferenceService': 'inferenceservices',
  'tekton.dev/v1/PipelineRun': 'pipelineruns',
};

/** Exposes the discovery lookup KubernetesObjectApi keeps to itself (cached per apiVersion). */
class DiscoveryApi extends KubernetesObjectApi {
  lookup(apiVersion: string, kind: string): Promise<V1APIResource | undefined> {
    return this.resource(apiVersion, kind);
  }
}

export type KubeWatchOptions = {
  logger?: Logger;
  retryDelayMs?: number;
  /** Server-side length of one watch stream before it is resumed (client-go uses 5-10 min). */
  timeoutSeconds?: number;
};

export function watchViaKubeconfig(kubeconfigPath: string, opts: KubeWatchOptions = {}): WatchFn {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const watcher = new Watch(kc);
  const discovery = kc.makeApiClient(DiscoveryApi);
  const log = opts.logger;
  const retryDelayMs = opts.retryDelayMs ?? 1000;

  const pluralFor = async (apiVersion: string, kind: string): Promise<string> => {
    const known = KNOWN_PLURALS[`${apiVersion}/${kind}`];
    if (known) return known;
    const resource = await discovery.lookup(apiVersion, kind);
    if (!resource) throw new Error(`the API server does not serve ${kind} in ${apiVersion}`);
    return resource.name;
  };

  return async (args, onEvent) => {
    const plural = await pluralFor(args.apiVersion, args.kind);
    const prefix = args.apiVersion.includes('/') ? '/apis' : '/api';
    const path = `${prefix}/${args.apiVersion}${args.namespace ? `/namespaces/${args.namespace}` : ''}/${plural}`;
    let stopped = false;
    let controller: AbortController | undefined;
    let retryTimer: NodeJS.Timeout | undefined;
    let resourceVersion: string | undefined;

    /** Opens one watch stream; resolves once it is open, rejects when it could not be opened. */
    const open = async (): Promise<void> => {
      // after 410 Gone, re-list and report every object as updated (deletions in the gap are missed)
      if (resourceVersion === undefined) await list('MODIFIED');
      let failure: unknown;
      let opened = false;
      const query = {
        allowWatchBookmarks: true,
        timeoutSeconds: opts.timeoutSeconds ?? 300,
        ...(args.labelSelector ? { labelSelector: args.labelSelector } : {}),
        ...(resourceVersion ? { resourceVersion } : {}),
      };
      const ctl = await watcher.watch(
        path,
        query,
        (phase: string, obj: { code?: number; metadata?: { resourceVersion?: string } } | undefined) => {
          if (phase === 'ERROR') {
            if (obj?.code === 410) resourceVersion = undefined; // too old: the next open lists again
            return;
          }
          if (obj?.metadata?.resourceVersion) resourceVersion = obj.metadata.resourceVersion;
          if (phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') onEvent(phase, obj);
        },
        (err: unknown) => {
          if (!opened) {
            failure = err ?? new Error('watch closed before it opened');
            return;
          }
          if (stopped) return;
          log?.debug({ path, err }, 'watch ended; reconnecting');
          reconnect(err ? retryDelayMs : 0);
        },
      );
      if (failure !== undefined) {
        // a failed reconnect is retried; the first failure goes to the caller
        throw failure instanceof Error ? failure : new Error(JSON.stringify(failure));
      }
      opened = true;
      controller = ctl;
    };

    /** Re-opens the stream after `delayMs`, and keeps trying (every retryDelayMs) until it opens or is stopped. */
    const reconnect = (delayMs: number) => {
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => {
        if (stopped) return;
        open().catch((e: unknown) => {
          log?.warn({ path, err: e }, 'watch reconnect failed; retrying');
          reconnect(retryDelayMs);
        });
      }, delayMs);
      retryTimer.unref();
    };

    /** Lists (paginated) like an informer: each item as `type`, and the list's resourceVersion to watch from. */
    const list = async (type: 'ADDED' | 'MODIFIED') => {
      let continueToken: string | undefined;
      for (let page = 0; page < 10_000; page++) {
        const result = await discovery.list(args.apiVersion, args.kind, args.namespace, undefined, undefined, undefined, undefined, args.labelSelector, 500, continueToken);
        for (const item of result.items) onEvent(type, { apiVersion: args.apiVersion, kind: args.kind, ...item });
        resourceVersion = result.metadata?.resourceVersion ?? resourceVersion;
        continueToken = result.metadata?._continue;
        if (!continueToken) return;
      }
    };

    try {
      await list('ADDED');
      await open();
    } catch (err) {
      throw new Error(`watch ${path} failed: ${(err as Error).message}`);
    }
    return () => {
      stopped = true;
      clearTimeout(retryTimer);
      controller?.abort();
    };
  };
}
