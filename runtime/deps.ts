import { loadCatalog, type Catalog } from './catalog.ts';
import { createKubePort, type KubePort } from './kube.ts';
import { createLogger, type Logger } from './logger.ts';
import { secretValues, type Settings } from './settings.ts';
import { httpSink } from './sink.ts';
import type { Clock, EventSink, StepDeps } from './step.ts';

export const systemClock: Clock = { now: () => new Date() };

/** The one factory that builds every port a step uses; tests pass overrides for what they stand in for. */
export function createDeps(settings: Settings, overrides: Partial<{ logger: Logger; catalog: Catalog; kube: KubePort; sink: EventSink; clock: Clock; fetch: typeof fetch }> = {}): StepDeps {
  const logger = overrides.logger ?? createLogger({ name: settings.step ?? 'mlops', level: settings.logLevel, secrets: secretValues(settings) });
  return {
    settings,
    logger,
    catalog: overrides.catalog ?? loadCatalog(settings.catalogPath),
    kube: overrides.kube ?? createKubePort({ kubeconfigPath: settings.kubeconfigPath, namespace: settings.namespace }),
    sink: overrides.sink ?? httpSink(settings.sinkUrl, overrides.fetch ?? fetch),
    clock: overrides.clock ?? systemClock,
    fetch: overrides.fetch ?? fetch,
  };
}
