import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DEV_NAMESPACE, startLocal, type Local } from '../dev/local.ts';
import { runBootstrapRequest, storageStatusLine } from '../cli/bootstrap.ts';
import { loadCatalog, type Catalog } from '../runtime/catalog.ts';
import { createKubePort } from '../runtime/kube.ts';
import { createS3Port } from '../runtime/s3.ts';

// `mlops dev` with one catalog model stored in S3: the local S3 server and its credentials, then `mlops bootstrap`
// through the broker → a placeholder per S3 model that has none (none twice), readable with <state>/s3.env.

const base = loadCatalog('config/models.yaml');
const catalog: Catalog = { models: base.models.map((m) => (m.name === 'anomaly-detector' ? { ...m, storage: { ...m.storage, kind: 's3', prefix: 'models' } } : m)) };
const CM = { apiVersion: 'v1', kind: 'ConfigMap' };
let local: Local;

beforeAll(async () => {
  local = await startLocal({ catalog, scenario: 'happy', env: {}, tickSeconds: 1, rollout: { drainSeconds: 0 } });
}, 120_000);
afterAll(async () => { await local.close(); });

function env(): Record<string, string> {
  return Object.fromEntries(readFileSync(path.join(local.stateDir, 's3.env'), 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
const record = (): Record<string, string> => ((local.emulator.store.get(CM, { name: 'storage-bootstrap-status', namespace: DEV_NAMESPACE }) as { data?: Record<string, string> } | undefined)?.data ?? {});
async function until(what: string, ok: () => boolean, timeoutMs = 90_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(record())}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('mlops bootstrap uploads a placeholder for each S3 model that has none, once, readable with <state>/s3.env', async () => {
  const e = env();
  expect(Object.keys(e).sort()).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_DEFAULT_REGION', 'AWS_S3_BUCKET', 'AWS_S3_ENDPOINT', 'AWS_SECRET_ACCESS_KEY']);
  expect(`${e.AWS_S3_ENDPOINT}/${e.AWS_S3_BUCKET}`).toBe(`${local.s3.endpoint}/${local.bucket}`);
  const port = createS3Port({ endpoint: e.AWS_S3_ENDPOINT ?? '', bucket: e.AWS_S3_BUCKET ?? '', region: e.AWS_DEFAULT_REGION ?? '', accessKeyId: e.AWS_ACCESS_KEY_ID ?? '', secretAccessKey: e.AWS_SECRET_ACCESS_KEY ?? '' });
  const key = 'models/anomaly-detector/releases/placeholder/model.pkl';
  try {
    // The Secret's creation (ApiServerSource) already started a check; `mlops bootstrap` asks for one more.
    await until('the first check', () => record().state === 'validated');
    const first = await port.get(local.bucket, key);
    expect(first?.[0]).toBe(0x80);
    expect(await runBootstrapRequest({ broker: local.broker.url })).toBe(0);
    await until('the requested check', () => record().state === 'validated' && JSON.parse(record().models ?? '[]')[0]?.placeholder === 'existing');
    expect(JSON.parse(record().models ?? '[]')).toEqual([{ model: 'anomaly-detector', object: key, placeholder: 'existing', inferenceService: 'anomaly-detector', served: 2 }]);
    expect(Buffer.compare(first ?? Buffer.alloc(0), (await port.get(local.bucket, key)) ?? Buffer.alloc(0))).toBe(0);
    expect((await port.list(local.bucket, '')).filter((k) => !k.startsWith('.mlops'))).toEqual([key]);
    expect(await storageStatusLine(createKubePort({ kubeconfigPath: local.kubeconfigPath, namespace: DEV_NAMESPACE }))).toMatch(/^storage: validated at .*: 1 S3 model\(s\) served\n$/);
  } finally {
    port.close();
  }
});

test('mlops bootstrap without a broker is refused', async () => {
  expect(await runBootstrapRequest({ broker: undefined })).toBe(2);
});
