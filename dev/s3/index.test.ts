import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createS3Port, s3ConfigFromSecret, type S3Config } from '../../runtime/s3.ts';
import { startLocalS3, type LocalS3 } from './index.ts';

// The local S3 server through the real AWS SDK (runtime/s3.ts): what it accepts and, above all, what it refuses
// before anything is written (a wrong secret must not pass as it would against s3rver 3.x).

const dir = mkdtempSync(path.join(tmpdir(), 'mlops-s3-test-'));
let s3: LocalS3;
let config: S3Config;

beforeAll(async () => {
  s3 = await startLocalS3({ directory: path.join(dir, 'data'), buckets: ['models', 'frozen'], readOnlyBuckets: ['frozen'], credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'right-secret' } });
  config = { endpoint: s3.endpoint, bucket: 'models', region: 'us-east-1', accessKeyId: 'AKIDTEST', secretAccessKey: 'right-secret' };
});
afterAll(async () => {
  await s3.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('local S3 server', () => {
  test('put, head, get, list and delete with the right credentials', async () => {
    const port = createS3Port(config);
    await port.headBucket('models');
    await port.put('models', 'a/b c/model.pkl', Buffer.from('bytes'));
    expect(await port.head('models', 'a/b c/model.pkl')).toMatchObject({ bytes: 5 });
    expect(String(await port.get('models', 'a/b c/model.pkl'))).toBe('bytes');
    expect(readFileSync(s3.objectFile('models', 'a/b c/model.pkl'), 'utf8')).toBe('bytes');
    expect(await port.list('models', 'a/')).toEqual(['a/b c/model.pkl']);
    await port.delete('models', 'a/b c/model.pkl');
    expect(await port.head('models', 'a/b c/model.pkl')).toBeUndefined();
    port.close();
  });

  const refused: Array<[string, () => S3Config, string, string, string]> = [
    // name, config, bucket, failure kind, refusal recorded by the server
    ['wrong secret', () => ({ ...config, secretAccessKey: 'wrong-secret' }), 'models', 'bad-credentials', 'SignatureDoesNotMatch'],
    ['unknown access key', () => ({ ...config, accessKeyId: 'AKIDNOBODY' }), 'models', 'bad-credentials', 'InvalidAccessKeyId'],
    ['read-only bucket policy', () => config, 'frozen', 'forbidden', 'AccessDenied'],
    ['missing bucket', () => config, 'no-such-bucket', 'no-such-bucket', ''],
  ];
  test.each(refused)('%s: PUT is refused and nothing is written', async (_name, cfg, bucket, kind, refusal) => {
    const before = new Map(s3.refusals);
    const port = createS3Port(cfg());
    await expect(port.put(bucket, 'probe/x.pkl', Buffer.from('x'))).rejects.toMatchObject({ kind });
    port.close();
    if (refusal) expect(s3.refusals.get(refusal) ?? 0).toBe((before.get(refusal) ?? 0) + 1);
    expect(existsSync(s3.objectFile(bucket, 'probe/x.pkl'))).toBe(false);
  });

  test('an unsigned request is refused before the store sees it', async () => {
    const res = await fetch(`${s3.endpoint}/models/anonymous.pkl`, { method: 'PUT', body: 'x' });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('<Code>AccessDenied</Code>');
    expect(existsSync(s3.objectFile('models', 'anonymous.pkl'))).toBe(false);
  });

  test('unreachable endpoint and unresolvable host are named', async () => {
    const closed = createS3Port({ ...config, endpoint: 'http://127.0.0.1:1' });
    await expect(closed.headBucket('models')).rejects.toMatchObject({ kind: 'unreachable' });
    const nxdomain = createS3Port({ ...config, endpoint: 'http://s3.does-not-exist.invalid' });
    await expect(nxdomain.headBucket('models')).rejects.toMatchObject({ kind: 'dns' });
    closed.close(); nxdomain.close();
  });

  test('a presigned PUT works for its key only, and not once expired', async () => {
    const port = createS3Port(config);
    const url = await port.presignPut('models', 'p/model.pkl', 60);
    expect((await fetch(url.replace('p/model.pkl', 'p/other.pkl'), { method: 'PUT', body: 'x' })).status).toBe(403);
    expect(existsSync(s3.objectFile('models', 'p/other.pkl'))).toBe(false);
    expect((await fetch(url, { method: 'PUT', body: 'presigned' })).status).toBe(200);
    expect(String(await port.get('models', 'p/model.pkl'))).toBe('presigned');
    const expired = url.replace(/X-Amz-Date=\d{8}T\d{6}Z/, 'X-Amz-Date=20200101T000000Z');
    expect((await fetch(expired, { method: 'PUT', body: 'late' })).status).toBe(403);
    port.close();
  });

  test('TLS is verified against the configured CA bundle, never switched off', async () => {
    const certDir = path.join(dir, 'tls');
    execFileSync('mkdir', ['-p', certDir]);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem')], { stdio: 'ignore' });
    const tls = await startLocalS3({ directory: path.join(dir, 'tls-data'), buckets: ['models'], credentials: { accessKeyId: 'AKIDTLS', secretAccessKey: 'tls-secret' },
      tls: { key: readFileSync(path.join(certDir, 'key.pem'), 'utf8'), cert: readFileSync(path.join(certDir, 'cert.pem'), 'utf8') } });
    try {
      const cfg = { ...config, endpoint: tls.endpoint, accessKeyId: 'AKIDTLS', secretAccessKey: 'tls-secret' };
      const untrusted = createS3Port(cfg);
      await expect(untrusted.headBucket('models')).rejects.toMatchObject({ kind: 'tls' });
      const trusted = createS3Port(cfg, { caBundlePath: path.join(certDir, 'cert.pem') });
      await trusted.headBucket('models');
      untrusted.close(); trusted.close();
    } finally {
      await tls.close();
    }
  });
});

describe('s3ConfigFromSecret: one set of key names, the others mapped', () => {
  const b64 = (o: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  const creds = { AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK' };
  const rows: Array<[string, Record<string, string>, Partial<S3Config> | string]> = [
    ['platform names (ADR-024 ExternalSecret)', { ...creds, AWS_S3_ENDPOINT: 'https://s3.openshift-storage.svc', AWS_S3_BUCKET: 'model-storage', AWS_DEFAULT_REGION: 'eu-west-1' },
      { endpoint: 'https://s3.openshift-storage.svc', bucket: 'model-storage', region: 'eu-west-1' }],
    ['our earlier MODEL_STORAGE_* examples', { ...creds, MODEL_STORAGE_ENDPOINT: 'https://s3.openshift-storage.svc', MODEL_STORAGE_BUCKET: 'model-storage', MODEL_STORAGE_REGION: 'us-east-1' },
      { endpoint: 'https://s3.openshift-storage.svc', bucket: 'model-storage', region: 'us-east-1' }],
    ['ObjectBucketClaim ConfigMap keys', { ...creds, BUCKET_HOST: 's3.openshift-storage.svc', BUCKET_PORT: '443', BUCKET_SSL: 'true', BUCKET_NAME: 'obc-bucket-1234', BUCKET_REGION: '' },
      { endpoint: 'https://s3.openshift-storage.svc:443', bucket: 'obc-bucket-1234', region: 'us-east-1' }],
    ['OBC on plain HTTP', { ...creds, BUCKET_HOST: 'rook-ceph-rgw.rook-ceph.svc', BUCKET_PORT: '80', BUCKET_SSL: 'false', BUCKET_NAME: 'models-1' },
      { endpoint: 'http://rook-ceph-rgw.rook-ceph.svc:80', bucket: 'models-1' }],
    ['no credentials', { AWS_S3_ENDPOINT: 'https://s3.example.com', AWS_S3_BUCKET: 'b-1' }, 'AWS_ACCESS_KEY_ID is missing; AWS_SECRET_ACCESS_KEY is missing'],
    ['no endpoint', { ...creds, AWS_S3_BUCKET: 'b-1' }, 'AWS_S3_ENDPOINT (or BUCKET_HOST) is missing'],
  ];
  test.each(rows)('%s', (_name, data, want) => {
    const got = s3ConfigFromSecret({ data: b64(data) }, 'model-storage-config');
    if (typeof want === 'string') {
      expect(got).toEqual({ ok: false, reason: `Secret model-storage-config: ${want}` });
      // The reason names keys, never values.
      for (const v of Object.values(data)) expect((got as { reason: string }).reason).not.toContain(`: ${v}`);
    } else {
      expect(got).toMatchObject({ ok: true, config: { accessKeyId: 'AK', secretAccessKey: 'SK', ...want } });
    }
  });
  test('an absent Secret', () => {
    expect(s3ConfigFromSecret(undefined, 'model-storage-config')).toEqual({ ok: false, reason: 'Secret model-storage-config does not exist' });
  });
});
