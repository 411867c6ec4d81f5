// The local S3 server of `mlops dev` (docs/storage.md, "Local S3 server"): @20minutes/s3rver serves the S3 REST
// API from a folder; in front of it every request's SigV4 signature is verified with the AWS SDK's own signer
// (./sigv4.ts), because s3rver accepts any SigV4 signature for bucket-level requests the current SDK sends
// (it canonicalises `/bucket/` as `/bucket`) and s3rver 3.x does not check SigV4 at all. What a real store
// enforces and this server cannot — a bucket policy that allows reading but not writing — is emulated here:
// `readOnlyBuckets` answer 403 AccessDenied to every write, after the signature check, as S3 does.
import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { verifySigV4 } from './sigv4.ts';

const require = createRequire(import.meta.url);

interface S3rverInstance {
  configureBuckets(): Promise<void>;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  logger?: { close?: () => void; exceptions?: { unhandle?: () => void } };
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;
interface AccountModule { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void; revokeAccessKey(id: string): void } }

export interface LocalS3Credentials { accessKeyId: string; secretAccessKey: string }

export interface LocalS3Options {
  /** Folder the objects live in (one sub-folder per bucket, s3rver's filesystem layout). */
  directory: string;
  /** Buckets created at start. */
  buckets: string[];
  credentials: LocalS3Credentials;
  /** Buckets whose policy allows reads only (emulated: writes answer 403 AccessDenied). */
  readOnlyBuckets?: string[];
  region?: string;
  /** Serve HTTPS with this key and certificate (PEM) instead of HTTP. */
  tls?: { key: string; cert: string };
  port?: number;
}

export interface LocalS3 {
  /** `http://127.0.0.1:<port>` (https with `tls`). */
  endpoint: string;
  port: number;
  region: string;
  credentials: LocalS3Credentials;
  directory: string;
  /** The environment a client of this server needs (AWS_* names, docs/storage.md "Key names"). */
  env(bucket: string): Record<string, string>;
  /** The local file s3rver keeps an object's bytes in (for the KServe simulator's storage initializer). */
  objectFile(bucket: string, key: string): string;
  /** Requests refused, by S3 error code (tests assert the refusal happened here, not later). */
  refusals: Map<string, number>;
  close(): Promise<void>;
}

const WRITE_METHODS = new Set(['PUT', 'POST', 'DELETE']);

function xmlError(res: ServerResponse, status: number, code: string, message: string, resource: string): void {
  const esc = (s: string): string => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${esc(message)}</Message><Resource>${esc(resource)}</Resource></Error>`);
}

/** The bucket a path-style request addresses (`/bucket/key`), if any. */
function bucketOf(url: string | undefined): string | undefined {
  const first = (url ?? '/').split('?')[0]?.split('/')[1];
  return first ? decodeURIComponent(first) : undefined;
}

export async function startLocalS3(opts: LocalS3Options): Promise<LocalS3> {
  const S3rver = require('@20minutes/s3rver') as S3rverCtor;
  const accounts = require('@20minutes/s3rver/lib/models/account.js') as AccountModule;
  await mkdir(opts.directory, { recursive: true });
  const region = opts.region ?? 'us-east-1';
  // s3rver still looks the key up (its registry is process-wide); the signature itself is checked below, once.
  accounts.DUMMY_ACCOUNT.createKeyPair(opts.credentials.accessKeyId, opts.credentials.secretAccessKey);
  const s3rver = new S3rver({
    directory: opts.directory, silent: true, vhostBuckets: false, allowMismatchedSignatures: true,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  await s3rver.configureBuckets();
  const handle = s3rver.callback();
  const secrets = new Map([[opts.credentials.accessKeyId, opts.credentials.secretAccessKey]]);
  const readOnly = new Set(opts.readOnlyBuckets ?? []);
  const refusals = new Map<string, number>();
  const refuse = (res: ServerResponse, status: number, code: string, message: string, resource: string): void => {
    refusals.set(code, (refusals.get(code) ?? 0) + 1);
    xmlError(res, status, code, message, resource);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      const resource = (req.url ?? '/').split('?')[0] ?? '/';
      const verdict = await verifySigV4(req, secrets);
      if (!verdict.ok) return refuse(res, verdict.status, verdict.code, verdict.message, resource);
      const bucket = bucketOf(req.url);
      if (bucket && readOnly.has(bucket) && WRITE_METHODS.has(req.method ?? '')) {
        return refuse(res, 403, 'AccessDenied', `Access Denied (the policy of bucket ${bucket} allows reads only)`, resource);
      }
      handle(req, res);
    })().catch((err: unknown) => {
      if (!res.headersSent) xmlError(res, 500, 'InternalError', (err as Error).message, req.url ?? '/');
      else res.destroy();
    });
  };
  const server: Server = opts.tls ? createTlsServer({ key: opts.tls.key, cert: opts.tls.cert }, onRequest) : createServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const endpoint = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  return {
    endpoint, port, region, credentials: opts.credentials, directory: opts.directory, refusals,
    env: (bucket) => ({
      AWS_ACCESS_KEY_ID: opts.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: opts.credentials.secretAccessKey,
      AWS_S3_ENDPOINT: endpoint,
      AWS_S3_BUCKET: bucket,
      AWS_DEFAULT_REGION: region,
    }),
    objectFile: (bucket, key) => {
      // s3rver's FilesystemStore: <dir>/<bucket>/<key dirs>/<last segment>._S3rver_object
      const parts = key.split('/');
      const last = parts.pop() ?? '';
      return path.join(opts.directory, bucket, ...parts, `${last}._S3rver_object`);
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      accounts.DUMMY_ACCOUNT.revokeAccessKey(opts.credentials.accessKeyId);
      s3rver.logger?.exceptions?.unhandle?.();
      s3rver.logger?.close?.();
    },
  };
}
