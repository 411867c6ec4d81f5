// Releases of a model served from a bucket (docs/storage.md "S3 storage", "Promotion into the bucket"):
// `<prefix>/<model>/releases/<run>/model.pkl`, and the InferenceService's storageUri names the release FOLDER
// (`s3://<bucket>/<prefix>/<model>/releases/<run>/`): KServe's storage initializer downloads every object under an
// s3:// prefix into /mnt/models (kserve/kserve, `Storage._download_s3` of its Python storage module: `objects.filter(Prefix=...)`; the trailing
// `/` keeps `releases/r1` from matching `releases/r10/`), and the
// sklearn server loads the model.pkl it finds there.
import type { CatalogModel } from './catalog.ts';
import { createS3Port, s3ConfigFromSecret, type S3Port } from './s3.ts';
import type { KubePort } from './kube.ts';
import { Resources } from './resources.ts';
import { retryable } from './errors.ts';

export const releasesPrefix = (model: CatalogModel): string => `${model.storage.prefix ? `${model.storage.prefix}/` : ''}${model.name}/releases/`;
export const releaseKey = (model: CatalogModel, release: string): string => `${releasesPrefix(model)}${release}/model.pkl`;
export const releaseStorageUri = (model: CatalogModel, bucket: string, release: string): string => `s3://${bucket}/${releasesPrefix(model)}${release}/`;

/** The release a storageUri of this model names (its `releases/<release>/` folder or file), else undefined. */
export function releaseOfStorageUri(model: CatalogModel, storageUri: string | undefined): string | undefined {
  const m = /^s3:\/\/[^/]+\/(.+)$/.exec(storageUri ?? '');
  if (!m?.[1]?.startsWith(releasesPrefix(model))) return undefined;
  const rest = m[1].slice(releasesPrefix(model).length).split('/');
  const release = rest[0];
  return release && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(release) && (rest.length === 1 || (rest.length === 2 && (rest[1] === '' || rest[1] === 'model.pkl'))) ? release : undefined;
}

/** Release names under the model's releases/ prefix, oldest first by their model.pkl's LastModified. */
export function releasesByAge(model: CatalogModel, objects: Array<{ key: string; lastModified?: Date | undefined }>): string[] {
  const prefix = releasesPrefix(model);
  const when = new Map<string, number>();
  for (const o of objects) {
    if (!o.key.startsWith(prefix)) continue;
    const [release, file] = o.key.slice(prefix.length).split('/');
    if (!release || file !== 'model.pkl') continue;
    when.set(release, o.lastModified?.getTime() ?? 0);
  }
  return [...when.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0])).map(([r]) => r);
}

/** Releases to delete: all but the newest `kept`, never one in `protect` (the served and the restorable one). */
export function releasesToPrune(byAge: string[], kept: number, protect: ReadonlyArray<string | null | undefined>): string[] {
  const newest = new Set(byAge.slice(Math.max(0, byAge.length - kept)));
  return byAge.filter((r) => !newest.has(r) && !protect.includes(r));
}

export interface ModelBucket { port: S3Port; bucket: string }

/**
 * The S3 port and bucket of an S3 model, from the storage Secret read now (never our env, never logged).
 * A missing or unparsable Secret is retryable (503): External Secrets may not have written it yet.
 */
export async function modelBucket(kube: KubePort, model: CatalogModel, caBundlePath?: string): Promise<ModelBucket> {
  const name = model.storage.configSecret;
  const secret = await kube.get<{ data?: Record<string, string>; stringData?: Record<string, string> }>(Resources.secret, name);
  const config = s3ConfigFromSecret(secret, name);
  if (!config.ok) throw retryable(`S3 storage of ${model.name}: ${config.reason}`);
  return { port: createS3Port(config.config, { caBundlePath }), bucket: model.storage.bucket ?? config.config.bucket };
}
