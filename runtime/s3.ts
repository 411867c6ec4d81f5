// The S3 port (docs/storage.md "S3 storage"): the one importer of @aws-sdk/client-s3. Connection settings come
// only from the `model-storage-config` Secret (never from our own env, never logged); the CA bundle that TLS to an
// in-cluster endpoint is verified against comes from settings (S3_CA_BUNDLE, read once). TLS is never switched off.
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import {
  DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { z } from 'zod';


/**
 * Key names (docs/storage.md "Key names"): we read the names the platform we replace writes into
 * `model-storage-config` (AWS_S3_ENDPOINT, AWS_S3_BUCKET, AWS_DEFAULT_REGION beside the ObjectBucketClaim's
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), and map the others: our earlier examples' MODEL_STORAGE_* and the
 * ObjectBucketClaim ConfigMap's BUCKET_HOST / BUCKET_PORT / BUCKET_SSL / BUCKET_NAME / BUCKET_REGION.
 */
export const S3KeyNames = {
  accessKeyId: 'AWS_ACCESS_KEY_ID',
  secretAccessKey: 'AWS_SECRET_ACCESS_KEY',
  endpoint: 'AWS_S3_ENDPOINT',
  bucket: 'AWS_S3_BUCKET',
  region: 'AWS_DEFAULT_REGION',
} as const;
const ALIASES = {
  endpoint: ['MODEL_STORAGE_ENDPOINT'],
  bucket: ['MODEL_STORAGE_BUCKET', 'BUCKET_NAME'],
  region: ['MODEL_STORAGE_REGION', 'BUCKET_REGION'],
} as const;

export const S3Config = z.object({
  endpoint: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name'),
  region: z.string().min(1).max(64),
  accessKeyId: z.string().min(1).max(256),
  secretAccessKey: z.string().min(1).max(512),
}).strict();
export type S3Config = z.infer<typeof S3Config>;

export type S3ConfigResult = { ok: true; config: S3Config } | { ok: false; reason: string };

/** Secret `data` (base64) or `stringData` → config; the reason names keys, never values. */
export function s3ConfigFromSecret(secret: { data?: Record<string, string> | undefined; stringData?: Record<string, string> | undefined } | undefined, secretName: string): S3ConfigResult {
  if (!secret) return { ok: false, reason: `Secret ${secretName} does not exist` };
  const values: Record<string, string> = { ...(secret.stringData ?? {}) };
  for (const [k, v] of Object.entries(secret.data ?? {})) values[k] = Buffer.from(v, 'base64').toString('utf8').trim();
  const pick = (name: string, aliases: readonly string[]): string | undefined => [name, ...aliases].map((k) => values[k]).find((v) => v !== undefined && v !== '');
  let endpoint = pick(S3KeyNames.endpoint, ALIASES.endpoint);
  if (!endpoint && values.BUCKET_HOST) {
    // The ObjectBucketClaim ConfigMap: host, port and BUCKET_SSL (lib-bucket-provisioner resourcehandlers.go).
    const ssl = values.BUCKET_SSL ? values.BUCKET_SSL === 'true' : values.BUCKET_PORT === '443';
    endpoint = `${ssl ? 'https' : 'http'}://${values.BUCKET_HOST}${values.BUCKET_PORT ? `:${values.BUCKET_PORT}` : ''}`;
  }
  const parsed = S3Config.safeParse({
    endpoint,
    bucket: pick(S3KeyNames.bucket, ALIASES.bucket),
    region: pick(S3KeyNames.region, ALIASES.region) ?? 'us-east-1',
    accessKeyId: values[S3KeyNames.accessKeyId],
    secretAccessKey: values[S3KeyNames.secretAccessKey],
  });
  if (!parsed.success) {
    const keyFor: Record<string, string> = { endpoint: `${S3KeyNames.endpoint} (or BUCKET_HOST)`, bucket: `${S3KeyNames.bucket} (or BUCKET_NAME)`, region: S3KeyNames.region, accessKeyId: S3KeyNames.accessKeyId, secretAccessKey: S3KeyNames.secretAccessKey };
    return { ok: false, reason: `Secret ${secretName}: ${parsed.error.issues.map((i) => `${keyFor[String(i.path[0])] ?? String(i.path[0])} ${i.input === undefined ? 'is missing' : i.message}`).join('; ')}` };
  }
  return { ok: true, config: parsed.data };
}

/** Why an S3 call failed, named precisely (docs/storage.md "Failures"). */
export const S3FailureKind = {
  dns: 'dns', tls: 'tls', unreachable: 'unreachable', timeout: 'timeout', badCredentials: 'bad-credentials', forbidden: 'forbidden',
  noSuchBucket: 'no-such-bucket', noSuchKey: 'no-such-key', other: 'other',
} as const;
export type S3FailureKind = (typeof S3FailureKind)[keyof typeof S3FailureKind];

export class S3Failure extends Error {
  readonly kind: S3FailureKind;
  readonly status: number | undefined;
  constructor(kind: S3FailureKind, message: string, status?: number) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

const TLS_CODES = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER']);

/** Any error from the SDK → S3Failure with its kind; `what` says which call (e.g. `PUT s3://b/k`). */
export function classifyS3Error(err: unknown, what: string): S3Failure {
  if (err instanceof S3Failure) return err;
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number }; Code?: string };
  const status = e.$metadata?.httpStatusCode;
  // The SDK may wrap a transport error ("AWS SDK error wrapper for Error: connect ECONNREFUSED ..."): look inside too.
  const inner = (err as { cause?: { code?: string }; $cause?: { code?: string } });
  const known = [...TLS_CODES, 'ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT'];
  const code = e.code ?? inner.cause?.code ?? inner.$cause?.code ?? known.find((c) => (e.message ?? '').includes(c)) ?? '';
  const name = e.name ?? '';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new S3Failure('dns', `${what}: the endpoint's host name does not resolve (${code})`);
  if (TLS_CODES.has(code) || /certificate|ssl|tls/i.test(e.message ?? '')) return new S3Failure('tls', `${what}: TLS verification failed (${code || e.message})`);
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return new S3Failure('unreachable', `${what}: the endpoint is unreachable (${code})`);
  if (code === 'ETIMEDOUT' || name === 'TimeoutError' || name === 'RequestTimeout') return new S3Failure('timeout', `${what}: timed out`);
  if (err instanceof S3ServiceException || status !== undefined) {
    if (name === 'NoSuchBucket') return new S3Failure('no-such-bucket', `${what}: the bucket does not exist (404 NoSuchBucket)`, status);
    if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) return new S3Failure('no-such-key', `${what}: no such object (404)`, status);
    if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch') return new S3Failure('bad-credentials', `${what}: the credentials are wrong (403 ${name})`, status);
    if (status === 403) return new S3Failure('forbidden', `${what}: access denied (403 ${name || 'AccessDenied'})`, status);
    return new S3Failure('other', `${what}: ${status ?? ''} ${name}`.trim(), status);
  }
  return new S3Failure('other', `${what}: ${e.message ?? String(err)}`);
}

/** Where connectivity probes are written (and removed again). */
export const PROBE_PREFIX = '.mlops-storage-probe';

export interface S3ObjectHead { bytes: number; etag?: string }

/** What the steps do with a bucket; every method throws S3Failure. */
export interface S3Port {
  headBucket(bucket: string): Promise<void>;
  head(bucket: string, key: string): Promise<S3ObjectHead | undefined>;
  get(bucket: string, key: string, range?: { start: number; end: number }): Promise<Buffer | undefined>;
  put(bucket: string, key: string, body: Buffer, opts?: { ifNoneMatch?: boolean }): Promise<void>;
  delete(bucket: string, key: string): Promise<void>;
  list(bucket: string, prefix: string): Promise<string[]>;
  /** Like list, with each object's LastModified (release pruning orders by it). */
  listObjects(bucket: string, prefix: string): Promise<Array<{ key: string; lastModified?: Date | undefined }>>;
  /** A URL anyone may PUT exactly this object to until it expires (the placeholder Job holds no credentials). */
  presignPut(bucket: string, key: string, expiresSeconds: number): Promise<string>;
  close(): void;
}

let caCache: { path: string; pem: string } | undefined;
function readCa(path: string): string {
  if (caCache?.path !== path) caCache = { path, pem: readFileSync(path, 'utf8') };
  return caCache.pem;
}

export interface S3PortOptions {
  /** PEM bundle TLS to the endpoint is verified against besides the system roots (OpenShift's service CA). */
  caBundlePath?: string | undefined;
  timeoutMs?: number;
}

export function createS3Port(config: S3Config, opts: S3PortOptions = {}): S3Port {
  const https = config.endpoint.startsWith('https:');
  const timeout = opts.timeoutMs ?? 10_000;
  // Extra CAs are added to, never replace, verification; rejectUnauthorized stays at its default (true).
  const agent = https ? new HttpsAgent({ keepAlive: true, ...(opts.caBundlePath ? { ca: readCa(opts.caBundlePath) } : {}) }) : new HttpAgent({ keepAlive: true });
  const client = new S3Client({
    endpoint: config.endpoint,
    region: config.region,
    forcePathStyle: true,
    credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
    maxAttempts: 2,
    // The SDK builds its NodeHttpHandler from these options.
    requestHandler: { ...(https ? { httpsAgent: agent as HttpsAgent } : { httpAgent: agent }), connectionTimeout: timeout, requestTimeout: timeout },
  });
  const uri = (bucket: string, key?: string): string => `s3://${bucket}${key ? `/${key}` : ''}`;
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try { return await fn(); } catch (err) { throw classifyS3Error(err, what); }
  };
  const listObjects = (bucket: string, prefix: string): Promise<Array<{ key: string; lastModified?: Date | undefined }>> => call(`LIST ${uri(bucket, prefix)}`, async () => {
    const objects: Array<{ key: string; lastModified?: Date | undefined }> = [];
    let token: string | undefined;
    do {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      for (const o of out.Contents ?? []) if (o.Key) objects.push({ key: o.Key, lastModified: o.LastModified });
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return objects;
  });
  return {
    // A listing rather than HeadBucket: a HEAD answer has no body, so a 403 could not say whether the signature,
    // the key or the policy refused it; the listing's error code does. Under a prefix that holds nothing but
    // probes, so it stays small (no MaxKeys: the local server fails truncated listings).
    headBucket: (bucket) => call(`LIST bucket ${uri(bucket)}`, async () => {
      await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${PROBE_PREFIX}/` }));
    }),
    head: (bucket, key) => call(`HEAD ${uri(bucket, key)}`, async () => {
      try {
        const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { bytes: out.ContentLength ?? 0, ...(out.ETag ? { etag: out.ETag } : {}) };
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
        throw err;
      }
    }),
    get: (bucket, key, range) => call(`GET ${uri(bucket, key)}`, async () => {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }));
        return Buffer.from(await out.Body!.transformToByteArray());
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
        throw err;
      }
    }),
    put: (bucket, key, body, o) => call(`PUT ${uri(bucket, key)}`, async () => {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...(o?.ifNoneMatch ? { IfNoneMatch: '*' } : {}) }));
    }),
    delete: (bucket, key) => call(`DELETE ${uri(bucket, key)}`, async () => {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    }),
    list: async (bucket, prefix) => (await listObjects(bucket, prefix)).map((o) => o.key),
    listObjects: (bucket, prefix) => listObjects(bucket, prefix),
    presignPut: (bucket, key, expiresSeconds) => call(`presign PUT ${uri(bucket, key)}`, () => getSignedUrl(client, new PutObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: expiresSeconds })),
    close: () => { client.destroy(); agent.destroy(); },
  };
}
