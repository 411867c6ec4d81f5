import type { Catalog } from './catalog.ts';
import type { Rule } from './declare.ts';

// The storage Secret as step declarations name it (docs/storage.md). Kept apart from runtime/s3.ts, which loads the
// AWS SDK: declarations are imported by every function process and by `mlops render`, and must stay light.

/** The label on the storage Secret that storage-bootstrap's ApiServerSource selects. */
export const STORAGE_CONFIG_LABEL = 'mlops.dev/storage-config';

/** `get` on exactly the storage Secrets the catalog names (each model's `storage.configSecret`), nothing else. */
export function storageSecretReadRules(catalog: Catalog, models = catalog.models): Rule[] {
  const names = [...new Set(models.map((m) => m.storage.configSecret))].sort();
  return names.length === 0 ? [] : [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'], resourceNames: names }];
}

/** The same for a step that reads the Secret only for models served from a bucket (none such: no grant). */
export function s3StorageSecretReadRules(catalog: Catalog): Rule[] {
  return storageSecretReadRules(catalog, catalog.models.filter((m) => m.storage.kind === 's3'));
}
