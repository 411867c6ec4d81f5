import { EventTypes } from '../../events/catalog.ts';
import { ApiServerEventTypes } from '../../events/upstream/apiserversource.ts';
import { PING_EVENT_TYPE } from '../../events/upstream/pingsource.ts';
import { declareStep, routed } from '../../runtime/declare.ts';
import { jobsOf } from '../../runtime/labels.ts';
import { Resources } from '../../runtime/resources.ts';
import { STORAGE_CONFIG_LABEL, storageSecretReadRules } from '../../runtime/storage-config.ts';

const STORAGE = 'storage';
// The watchdog's minute tick (its PingSource): the check is redone when the last one is a day old or failed.
const TICK = 'watchdog';

export const declaration = declareStep({
  name: 'storage-bootstrap',
  input: 'cloudevent',
  consumes: [
    { name: 'requested', filter: { type: EventTypes.storageBootstrapRequested } },
    { name: 'tick', filter: routed(PING_EVENT_TYPE, TICK) },
    { name: 'ref-added', filter: routed(ApiServerEventTypes.refAdd, STORAGE) },
    { name: 'ref', filter: routed(ApiServerEventTypes.refUpdate, STORAGE) },
  ],
  // Reference mode: the Secret's data never travels in an event (docs/storage.md); the step reads it by name.
  apiServerSources: [
    { name: 'mlops-storage', route: STORAGE, mode: 'Reference', resource: { apiVersion: Resources.secret.apiVersion, kind: Resources.secret.kind, selector: { matchLabels: { [STORAGE_CONFIG_LABEL]: 'true' } } } },
    { name: 'mlops-storage-jobs', route: STORAGE, mode: 'Reference', resource: { apiVersion: Resources.job.apiVersion, kind: Resources.job.kind, selector: jobsOf(['storage-bootstrap']) } },
  ],
  emits: [EventTypes.storageValidated, EventTypes.storageFailed],
  // Reads the storage Secret(s) the catalog names, and only those (docs/storage.md); never writes them.
  catalogRules: storageSecretReadRules,
  rules: [
    // Its record (ConfigMap storage-bootstrap-status); `create` cannot be limited by name.
    { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update'] },
    { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'create'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    { apiGroups: ['serving.kserve.io'], resources: ['inferenceservices'], verbs: ['get', 'patch'] },
  ],
  load: async () => (await import('./index.ts')).step,
});
