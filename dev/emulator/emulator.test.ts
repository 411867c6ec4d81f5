import {
  AppsV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  Watch,
  makeInformer,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { KubernetesObject, V1ConfigMap } from '@kubernetes/client-node';
import { startEmulator } from './index.ts';
import type { Emulator } from './index.ts';
import { WIDGET_GROUP, clusterGadgetCrd, widgetCrd } from './testkit.ts';

let emu: Emulator;
let kc: KubeConfig;
let core: CoreV1Api;
let custom: CustomObjectsApi;

const W = { group: WIDGET_GROUP, version: 'v1', plural: 'widgets' };
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
const strategic = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

interface StatusLike {
  code?: number;
  reason?: string;
  message?: string;
  details?: { name?: string; kind?: string; group?: string; causes?: { field?: string; message?: string }[] };
}

/** Awaits a rejected client-node call and returns the HTTP code plus the Status body. */
async function failure(p: Promise<unknown>): Promise<{ code: number; status: StatusLike }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    if (typeof e.code !== 'number') throw err;
    const status = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as StatusLike;
    return { code: e.code, status };
  }
  throw new Error('expected the call to fail');
}

async function raw(path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = init.token === undefined ? emu.adminToken : init.token;
  if (token !== null) headers.set('Authorization', `Bearer ${token}`);
  return fetch(emu.url + path, { ...init, headers });
}

function configForToken(token: string): KubeConfig {
  const k = new KubeConfig();
  k.loadFromOptions({
    clusters: [{ name: 'c', server: emu.url, skipTLSVerify: true }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u', namespace: 'default' }],
    currentContext: 'x',
  });
  return k;
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A client-node watch collecting events until stopped. */
async function watchEvents(path: string, query: Record<string, string | number | boolean | undefined>, k: KubeConfig = kc) {
  const events: { type: string; object: KubernetesObject & Record<string, unknown> }[] = [];
  let ended = false;
  const controller = await new Watch(k).watch(
    path,
    query,
    (type: string, object: KubernetesObject & Record<string, unknown>) => events.push({ type, object }),
    () => {
      ended = true;
    },
  );
  return { events, controller, ended: () => ended };
}

beforeAll(async () => {
  emu = await startEmulator({ seed: 7, bookmarkIntervalMs: 100 });
  kc = new KubeConfig();
  kc.loadFromString(emu.kubeconfigYaml());
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
  await emu.applyManifests([widgetCrd()]);
});

afterAll(async () => {
  await emu.close();
});

afterEach(() => {
  emu.faults.clear();
});

describe('discovery', () => {
  test('serves /version, /api/v1 with subresources and CRD groups', async () => {
    const version = (await (await raw('/version', { token: null })).json()) as { major: string; minor: string };
    expect(version).toMatchObject({ major: '1', minor: '32' });
    const v1 = (await (await raw('/api/v1')).json()) as { resources: { name: string; namespaced: boolean; verbs: string[]; shortNames?: string[] }[] };
    const names = v1.resources.map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(['pods', 'pods/status', 'pods/log', 'namespaces', 'configmaps', 'secrets', 'events']));
    expect(v1.resources.find((r) => r.name === 'namespaces')?.namespaced).toBe(false);
    expect(v1.resources.find((r) => r.name === 'pods')?.shortNames).toEqual(['po']);
    const groups = (await (await raw('/apis')).json()) as { groups: { name: string; preferredVersion: { version: string } }[] };
    const widgets = groups.groups.find((g) => g.name === WIDGET_GROUP);
    expect(widgets?.preferredVersion.version).toBe('v1');
    const gv = (await (await raw(`/apis/${WIDGET_GROUP}/v1`)).json()) as { resources: { name: string; kind: string; shortNames?: string[]; categories?: string[] }[] };
    expect(gv.resources.map((r) => r.name)).toEqual(['widgets', 'widgets/status']);
    expect(gv.resources[0]).toMatchObject({ kind: 'Widget', shortNames: ['wdg'], categories: ['all'] });
    expect((await raw(`/apis/${WIDGET_GROUP}/v1beta1`)).status).toBe(200);
  });

  test('a deleted CRD stops serving its resources', async () => {
    await emu.applyManifests([clusterGadgetCrd()]);
    const gadgetPath = `/apis/${WIDGET_GROUP}/v1/gadgets`;
    const created = await raw(gadgetPath, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Gadget', metadata: { name: 'g1' }, anything: { goes: 1 } }),
    });
    expect(created.status).toBe(201);
    expect(((await created.json()) as { metadata: { namespace?: string } }).metadata.namespace).toBeUndefined();
    const ext = kc.makeApiClient(KubernetesObjectApi);
    await ext.delete({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: `gadgets.${WIDGET_GROUP}` } });
    expect((await raw(gadgetPath)).status).toBe(404);
    const gv = (await (await raw(`/apis/${WIDGET_GROUP}/v1`)).json()) as { resources: { name: string }[] };
    expect(gv.resources.map((r) => r.name)).not.toContain('gadgets');
  });
});

describe('CRUD and conflicts', () => {
  test('create, read, replace, list, delete a ConfigMap', async () => {
    const created = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'crud' }, data: { a: '1' } } });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(Number(created.metadata?.resourceVersion)).toBeGreaterThan(0);
    const read = await core.readNamespacedConfigMap({ name: 'crud', namespace: 'default' });
    expect(read.data).toEqual({ a: '1' });
    const replaced = await core.replaceNamespacedConfigMap({ name: 'crud', namespace: 'default', body: { ...read, data: { a: '2' } } });
    expect(replaced.data).toEqual({ a: '2' });
    expect(Number(replaced.metadata?.resourceVersion)).toBeGreaterThan(Number(read.metadata?.resourceVersion));

    const stale = await failure(core.replaceNamespacedConfigMap({ name: 'crud', namespace: 'default', body: { ...read, data: { a: '3' } } }));
    expect(stale.code).toBe(409);
    expect(stale.status).toMatchObject({ reason: 'Conflict', details: { name: 'crud', kind: 'configmaps' } });
    expect(stale.status.message).toBe(
      'Operation cannot be fulfilled on configmaps "crud": the object has been modified; please apply your changes to the latest version and try again',
    );

    const dup = await failure(core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'crud' } } }));
    expect(dup.code).toBe(409);
    expect(dup.status).toMatchObject({ reason: 'AlreadyExists', message: 'configmaps "crud" already exists' });

    const all = await core.listConfigMapForAllNamespaces();
    expect(all.items.map((c) => c.metadata?.name)).toContain('crud');
    await core.deleteNamespacedConfigMap({ name: 'crud', namespace: 'default' });
    const missing = await failure(core.readNamespacedConfigMap({ name: 'crud', namespace: 'default' }));
    expect(missing.code).toBe(404);
    expect(missing.status).toMatchObject({ reason: 'NotFound', message: 'configmaps "crud" not found', details: { name: 'crud', kind: 'configmaps' } });
  });

  test('generateName, missing namespace, invalid names', async () => {
    const a = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { generateName: 'gen-' } } });
    const b = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { generateName: 'gen-' } } });
    expect(a.metadata?.name).toMatch(/^gen-[a-z0-9]{5}$/);
    expect(a.metadata?.name).not.toBe(b.metadata?.name);
    const noNs = await failure(core.createNamespacedConfigMap({ namespace: 'nowhere', body: { metadata: { name: 'x' } } }));
    expect(noNs.status).toMatchObject({ code: 404, message: 'namespaces "nowhere" not found' });
    const bad = await failure(core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'Bad_Name' } } }));
    expect(bad.code).toBe(422);
    expect(bad.status.reason).toBe('Invalid');
    expect(bad.status.details?.causes?.[0]?.field).toBe('metadata.name');
  });

  test('KubernetesObjectApi create/read/patch/list/delete by apiVersion+kind', async () => {
    const api = kc.makeApiClient(KubernetesObjectApi);
    await api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'obj-api', namespace: 'default' }, stringData: { k: 'v' } } as KubernetesObject);
    const read: KubernetesObject & { data?: Record<string, string> } = await api.read({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'obj-api', namespace: 'default' } });
    expect(read.data).toEqual({ k: Buffer.from('v').toString('base64') });
    await api.patch(
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'obj-api', namespace: 'default', labels: { p: 'y' } } },
      undefined,
      undefined,
      undefined,
      undefined,
      PatchStrategy.MergePatch,
    );
    const list = await api.list('v1', 'Secret', 'default', undefined, undefined, undefined, undefined, 'p=y');
    expect(list.items.map((i) => i.metadata?.name)).toEqual(['obj-api']);
    await api.delete({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'obj-api', namespace: 'default' } });
    expect((await api.list('v1', 'Secret', 'default')).items).toHaveLength(0);
  });

  test('Lease optimistic concurrency through CoordinationV1Api', async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    const lease = await leases.createNamespacedLease({ namespace: 'default', body: { metadata: { name: 'lock-a' }, spec: { holderIdentity: 'run-1' } } });
    const taken = await failure(leases.createNamespacedLease({ namespace: 'default', body: { metadata: { name: 'lock-a' }, spec: { holderIdentity: 'run-2' } } }));
    expect(taken.status.reason).toBe('AlreadyExists');
    await leases.replaceNamespacedLease({ name: 'lock-a', namespace: 'default', body: { ...lease, spec: { holderIdentity: 'run-3' } } });
    const lost = await failure(leases.replaceNamespacedLease({ name: 'lock-a', namespace: 'default', body: { ...lease, spec: { holderIdentity: 'run-4' } } }));
    expect(lost.status.reason).toBe('Conflict');
    expect((await leases.readNamespacedLease({ name: 'lock-a', namespace: 'default' })).spec?.holderIdentity).toBe('run-3');
  });
});

describe('patches', () => {
  test('merge, JSON (failing test op is 422) and strategic merge', async () => {
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'p', labels: { a: '1', b: '2' } }, data: { x: '1' } } });
    const merged = await core.patchNamespacedConfigMap({ name: 'p', namespace: 'default', body: { metadata: { labels: { b: null, c: '3' } }, data: { y: '2' } } }, merge);
    expect(merged.metadata?.labels).toEqual({ a: '1', c: '3' });
    expect(merged.data).toEqual({ x: '1', y: '2' });
    const jp = await core.patchNamespacedConfigMap(
      { name: 'p', namespace: 'default', body: [{ op: 'test', path: '/data/x', value: '1' }, { op: 'replace', path: '/data/x', value: '9' }] },
      jsonPatch,
    );
    expect(jp.data?.x).toBe('9');
    const failed = await failure(core.patchNamespacedConfigMap({ name: 'p', namespace: 'default', body: [{ op: 'test', path: '/data/x', value: 'nope' }] }, jsonPatch));
    expect(failed.code).toBe(422);
    expect((await core.readNamespacedConfigMap({ name: 'p', namespace: 'default' })).data?.x).toBe('9');

    const apps = kc.makeApiClient(AppsV1Api);
    await apps.createNamespacedDeployment({
      namespace: 'default',
      body: {
        metadata: { name: 'dep' },
        spec: {
          selector: { matchLabels: { app: 'dep' } },
          template: {
            metadata: { labels: { app: 'dep' } },
            spec: { containers: [{ name: 'a', image: 'a:1', env: [{ name: 'X', value: '1' }] }, { name: 'b', image: 'b:1' }] },
          },
        },
      },
    });
    const smp = await apps.patchNamespacedDeployment(
      { name: 'dep', namespace: 'default', body: { spec: { template: { spec: { containers: [{ name: 'a', image: 'a:2', env: [{ name: 'Y', value: '2' }] }] } } } } },
      strategic,
    );
    const containers = smp.spec?.template.spec?.containers ?? [];
    expect(containers.map((c) => `${c.name}=${c.image}`)).toEqual(['a=a:2', 'b=b:1']);
    expect(containers[0]?.env?.map((e) => e.name)).toEqual(['X', 'Y']);
    expect(smp.metadata?.generation).toBe(2);
    const onCr = await failure(
      custom.patchNamespacedCustomObject({ ...W, namespace: 'default', name: 'none', body: { spec: {} } }, strategic),
    );
    expect(onCr.code).toBe(415);
  });
});

describe('custom resources', () => {
  test('status subresource, generation and printer-column Table', async () => {
    const created = (await custom.createNamespacedCustomObject({
      ...W,
      namespace: 'default',
      body: { apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget', metadata: { name: 'st' }, spec: { size: 1 }, status: { phase: 'Ignored' } },
    })) as { metadata: { generation: number; resourceVersion: string }; status?: unknown; spec: Record<string, unknown> };
    expect(created.status).toBeUndefined();
    expect(created.metadata.generation).toBe(1);
    expect(created.spec).toEqual({ size: 1, color: 'blue' });

    const withStatus = (await custom.patchNamespacedCustomObjectStatus(
      { ...W, namespace: 'default', name: 'st', body: { status: { phase: 'Running' }, spec: { size: 99 } } },
      merge,
    )) as { spec: { size: number }; status: { phase: string }; metadata: { generation: number } };
    expect(withStatus.status.phase).toBe('Running');
    expect(withStatus.spec.size).toBe(1);
    expect(withStatus.metadata.generation).toBe(1);

    const main = (await custom.patchNamespacedCustomObject(
      { ...W, namespace: 'default', name: 'st', body: { spec: { size: 2 }, status: { phase: 'Hacked' } } },
      merge,
    )) as { spec: { size: number }; status: { phase: string }; metadata: { generation: number } };
    expect(main.spec.size).toBe(2);
    expect(main.status.phase).toBe('Running');
    expect(main.metadata.generation).toBe(2);
    const labelled = (await custom.patchNamespacedCustomObject({ ...W, namespace: 'default', name: 'st', body: { metadata: { labels: { l: '1' } } } }, merge)) as {
      metadata: { generation: number };
    };
    expect(labelled.metadata.generation).toBe(2);

    const table = (await (
      await raw(`/apis/${WIDGET_GROUP}/v1/namespaces/default/widgets`, { headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' } })
    ).json()) as { kind: string; columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    expect(table.kind).toBe('Table');
    expect(table.columnDefinitions.map((c) => c.name)).toEqual(['Name', 'Size', 'Phase', 'Age']);
    const row = table.rows.find((r) => r.cells[0] === 'st');
    expect(row?.cells.slice(0, 3)).toEqual(['st', 2, 'Running']);
    expect(String(row?.cells[3])).toMatch(/^\d+s$/);

    const v1beta1 = (await custom.getNamespacedCustomObject({ group: WIDGET_GROUP, version: 'v1beta1', plural: 'widgets', namespace: 'default', name: 'st' })) as {
      apiVersion: string;
    };
    expect(v1beta1.apiVersion).toBe(`${WIDGET_GROUP}/v1beta1`);
  });

  test('schema validation, pruning, defaults, int-or-string, nullable, preserve-unknown-fields', async () => {
    const body = (name: string, spec: unknown) => ({ apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget', metadata: { name }, spec });
    const missing = await failure(custom.createNamespacedCustomObject({ ...W, namespace: 'default', body: body('bad1', { color: 'red' }) }));
    expect(missing.code).toBe(422);
    expect(missing.status.reason).toBe('Invalid');
    expect(missing.status.message).toBe(`Widget.${WIDGET_GROUP} "bad1" is invalid: spec.size: Required value`);
    expect(missing.status.details?.causes?.[0]).toMatchObject({ field: 'spec.size', message: 'Required value' });

    const wrong = await failure(custom.createNamespacedCustomObject({ ...W, namespace: 'default', body: body('bad2', { size: 'big', color: 'green' }) }));
    expect(wrong.code).toBe(422);
    expect(wrong.status.details?.causes?.map((c) => c.field).sort()).toEqual(['spec.color', 'spec.size']);

    const ok = (await custom.createNamespacedCustomObject({
      ...W,
      namespace: 'default',
      body: body('good', { size: 3, port: 'http', note: null, junk: { a: 1 }, extra: { anything: [1, 2] }, tags: { a: 'b' } }),
    })) as { spec: Record<string, unknown> };
    expect(ok.spec).toEqual({ size: 3, port: 'http', note: null, extra: { anything: [1, 2] }, tags: { a: 'b' }, color: 'blue' });
    const intPort = (await custom.createNamespacedCustomObject({ ...W, namespace: 'default', body: body('good2', { size: 0, port: 8080 }) })) as {
      spec: Record<string, unknown>;
    };
    expect(intPort.spec.port).toBe(8080);
    const negative = await failure(custom.createNamespacedCustomObject({ ...W, namespace: 'default', body: body('bad3', { size: -1 }) }));
    expect(negative.status.details?.causes?.[0]?.field).toBe('spec.size');
  });
});

describe('selectors and pagination', () => {
  beforeAll(async () => {
    await core.createNamespace({ body: { metadata: { name: 'sel' } } });
    for (let i = 0; i < 25; i++) {
      await core.createNamespacedConfigMap({
        namespace: 'sel',
        body: { metadata: { name: `cm-${String(i).padStart(2, '0')}`, labels: { parity: i % 2 ? 'odd' : 'even', ...(i % 5 === 0 ? { five: 'yes' } : {}) } } },
      });
    }
  });

  test('label selectors (=, ==, !=, in, notin, exists, !exists) and field selectors', async () => {
    const names = async (labelSelector?: string, fieldSelector?: string): Promise<string[]> =>
      (await core.listNamespacedConfigMap({ namespace: 'sel', labelSelector, fieldSelector })).items.map((c) => c.metadata?.name ?? '');
    expect(await names('parity=odd')).toHaveLength(12);
    expect(await names('parity==even,five')).toEqual(['cm-00', 'cm-10', 'cm-20']);
    expect(await names('parity!=even,five')).toEqual(['cm-05', 'cm-15']);
    expect(await names('parity in (odd),five in (yes, no)')).toEqual(['cm-05', 'cm-15']);
    expect(await names('five notin (yes)')).toHaveLength(20);
    expect(await names('!five')).toHaveLength(20);
    expect(await names(undefined, 'metadata.name=cm-07')).toEqual(['cm-07']);
    expect(await names('parity=odd', 'metadata.name!=cm-01')).toHaveLength(11);
    expect((await core.listConfigMapForAllNamespaces({ fieldSelector: 'metadata.namespace=sel' })).items).toHaveLength(25);

    await core.createNamespacedEvent({
      namespace: 'sel',
      body: { metadata: { name: 'ev1' }, involvedObject: { kind: 'Pod', name: 'pod-a', namespace: 'sel' }, reason: 'Started', message: 'm', type: 'Normal' },
    });
    const evs = await core.listNamespacedEvent({ namespace: 'sel', fieldSelector: 'involvedObject.name=pod-a,reason=Started' });
    expect(evs.items.map((e) => e.metadata?.name)).toEqual(['ev1']);
    const bad = await failure(core.listNamespacedConfigMap({ namespace: 'sel', labelSelector: 'a in (b' }));
    expect(bad.code).toBe(400);
  });

  test('limit/continue pages through every item exactly once', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    const remaining: (number | undefined)[] = [];
    do {
      const page = await core.listNamespacedConfigMap({ namespace: 'sel', limit: 10, _continue: token });
      seen.push(...page.items.map((c) => c.metadata?.name ?? ''));
      remaining.push(page.metadata?.remainingItemCount);
      token = page.metadata?._continue || undefined;
      pages++;
    } while (token && pages < 10);
    expect(pages).toBe(3);
    expect(remaining).toEqual([15, 5, undefined]);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `cm-${String(i).padStart(2, '0')}`));
    const odd = await core.listNamespacedConfigMap({ namespace: 'sel', limit: 5, labelSelector: 'parity=odd' });
    expect(odd.items.map((c) => c.metadata?.name)).toEqual(['cm-01', 'cm-03', 'cm-05', 'cm-07', 'cm-09']);
    expect(odd.metadata?.remainingItemCount).toBe(7);
  });
});

describe('watch', () => {
  test('ADDED/MODIFIED/DELETED in order, synthetic ADDED from resourceVersion 0, bookmarks', async () => {
    await core.createNamespace({ body: { metadata: { name: 'w1' } } });
    await core.createNamespacedConfigMap({ namespace: 'w1', body: { metadata: { name: 'pre' } } });
    const w = await watchEvents('/api/v1/namespaces/w1/configmaps', { resourceVersion: '0', allowWatchBookmarks: true });
    await until(() => w.events.length >= 1);
    await core.createNamespacedConfigMap({ namespace: 'w1', body: { metadata: { name: 'live' } } });
    await core.patchNamespacedConfigMap({ name: 'live', namespace: 'w1', body: { data: { a: 'b' } } }, merge);
    await core.deleteNamespacedConfigMap({ name: 'live', namespace: 'w1' });
    await until(() => w.events.some((e) => e.type === 'DELETED') && w.events.some((e) => e.type === 'BOOKMARK'));
    w.controller.abort();
    const changes = w.events.filter((e) => e.type !== 'BOOKMARK').map((e) => `${e.type} ${e.object.metadata?.name}`);
    expect(changes).toEqual(['ADDED pre', 'ADDED live', 'MODIFIED live', 'DELETED live']);
    const rvs = w.events.filter((e) => e.type !== 'BOOKMARK').map((e) => Number(e.object.metadata?.resourceVersion));
    expect([...rvs].sort((a, b) => a - b)).toEqual(rvs);
    const bookmark = w.events.find((e) => e.type === 'BOOKMARK');
    expect(bookmark?.object.kind).toBe('ConfigMap');
    expect(Number(bookmark?.object.metadata?.resourceVersion)).toBeGreaterThan(0);
  });

  test('resumes from a resourceVersion; a selector watch sees objects enter and leave', async () => {
    const first = await core.createNamespacedConfigMap({ namespace: 'w1', body: { metadata: { name: 'r1', labels: { pick: 'no' } } } });
    const rv = first.metadata?.resourceVersion ?? '';
    await core.createNamespacedConfigMap({ namespace: 'w1', body: { metadata: { name: 'r2' } } });
    await core.patchNamespacedConfigMap({ name: 'r1', namespace: 'w1', body: { metadata: { labels: { pick: 'yes' } } } }, merge);
    const resumed = await watchEvents('/api/v1/namespaces/w1/configmaps', { resourceVersion: rv });
    const selected = await watchEvents('/api/v1/namespaces/w1/configmaps', { resourceVersion: rv, labelSelector: 'pick=yes' });
    await core.patchNamespacedConfigMap({ name: 'r1', namespace: 'w1', body: { metadata: { labels: { pick: 'gone' } } } }, merge);
    await until(() => resumed.events.length >= 3 && selected.events.length >= 2);
    resumed.controller.abort();
    selected.controller.abort();
    expect(resumed.events.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED r2', 'MODIFIED r1', 'MODIFIED r1']);
    expect(selected.events.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED r1', 'DELETED r1']);
  });

  test('too old a resourceVersion gets a 410 Expired ERROR event; timeoutSeconds ends the stream', async () => {
    const small = await startEmulator({ historySize: 3 });
    try {
      const k = new KubeConfig();
      k.loadFromString(small.kubeconfigYaml());
      const api = k.makeApiClient(CoreV1Api);
      const first = await api.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'a0' } } });
      for (let i = 1; i <= 5; i++) await api.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: `a${i}` } } });
      const old = await watchEvents('/api/v1/namespaces/default/configmaps', { resourceVersion: first.metadata?.resourceVersion }, k);
      await until(() => old.ended());
      expect(old.events).toHaveLength(1);
      expect(old.events[0]?.type).toBe('ERROR');
      expect(old.events[0]?.object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
      const timed = await watchEvents('/api/v1/namespaces/default/configmaps', { timeoutSeconds: 1 }, k);
      await until(() => timed.ended(), 4000);
      expect(timed.events).toHaveLength(6);
    } finally {
      await small.close();
    }
  });

  test('an informer sees adds, updates and deletes', async () => {
    await core.createNamespace({ body: { metadata: { name: 'inf' } } });
    const informer = makeInformer<V1ConfigMap>(kc, '/api/v1/namespaces/inf/configmaps', () => core.listNamespacedConfigMap({ namespace: 'inf' }));
    const seen: string[] = [];
    informer.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
    informer.on('update', (o) => seen.push(`update ${o.metadata?.name} ${o.data?.v ?? ''}`));
    informer.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
    await informer.start();
    try {
      await core.createNamespacedConfigMap({ namespace: 'inf', body: { metadata: { name: 'i1' } } });
      await until(() => seen.length === 1);
      await core.patchNamespacedConfigMap({ name: 'i1', namespace: 'inf', body: { data: { v: '2' } } }, merge);
      await until(() => seen.length === 2);
      await core.deleteNamespacedConfigMap({ name: 'i1', namespace: 'inf' });
      await until(() => seen.length === 3);
      expect(seen).toEqual(['add i1', 'update i1 2', 'delete i1']);
      expect(informer.list()).toHaveLength(0);
    } finally {
      await informer.stop();
    }
  });
});

describe('deletion', () => {
  const owner = (o: { metadata?: { name?: string; uid?: string } }, kind: string, apiVersion: string) => ({
    apiVersion,
    kind,
    name: o.metadata?.name ?? '',
    uid: o.metadata?.uid ?? '',
  });

  test('background cascade follows ownerReferences two levels deep; orphan keeps dependents', async () => {
    const root = (await custom.createNamespacedCustomObject({
      ...W,
      namespace: 'default',
      body: { apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget', metadata: { name: 'root' }, spec: { size: 1 } },
    })) as { metadata: { name: string; uid: string } };
    const batch = kc.makeApiClient(BatchV1Api);
    const job = await batch.createNamespacedJob({
      namespace: 'default',
      body: {
        metadata: { name: 'root-job', ownerReferences: [owner(root, 'Widget', `${WIDGET_GROUP}/v1`)] },
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] } } },
      },
    });
    await core.createNamespacedPod({
      namespace: 'default',
      body: { metadata: { name: 'root-pod', ownerReferences: [owner(job, 'Job', 'batch/v1')] }, spec: { containers: [{ name: 'c', image: 'i' }] } },
    });
    const status = await batch.patchNamespacedJobStatus({ name: 'root-job', namespace: 'default', body: { status: { succeeded: 1 } } }, merge);
    expect(status.status?.succeeded).toBe(1);
    await custom.deleteNamespacedCustomObject({ ...W, namespace: 'default', name: 'root' });
    expect((await failure(batch.readNamespacedJob({ name: 'root-job', namespace: 'default' }))).code).toBe(404);
    expect((await failure(core.readNamespacedPod({ name: 'root-pod', namespace: 'default' }))).code).toBe(404);

    const parent = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'parent' } } });
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'child', ownerReferences: [owner(parent, 'ConfigMap', 'v1')] } } });
    await core.deleteNamespacedConfigMap({ name: 'parent', namespace: 'default', propagationPolicy: 'Orphan' });
    const child = await core.readNamespacedConfigMap({ name: 'child', namespace: 'default' });
    expect(child.metadata?.ownerReferences).toBeUndefined();
  });

  test('foreground deletion waits for dependents; finalizers hold an object until removed', async () => {
    const parent = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'fg' } } });
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'fg-child', finalizers: ['test/hold'], ownerReferences: [owner(parent, 'ConfigMap', 'v1')] } },
    });
    await core.deleteNamespacedConfigMap({ name: 'fg', namespace: 'default', propagationPolicy: 'Foreground' });
    const waiting = await core.readNamespacedConfigMap({ name: 'fg', namespace: 'default' });
    expect(waiting.metadata?.deletionTimestamp).toBeInstanceOf(Date);
    expect(waiting.metadata?.finalizers).toEqual(['foregroundDeletion']);
    const child = await core.readNamespacedConfigMap({ name: 'fg-child', namespace: 'default' });
    expect(child.metadata?.deletionTimestamp).toBeInstanceOf(Date);
    const stuck = await failure(
      core.patchNamespacedConfigMap({ name: 'fg-child', namespace: 'default', body: { metadata: { finalizers: ['test/hold', 'test/more'] } } }, merge),
    );
    expect(stuck.code).toBe(422);
    await core.patchNamespacedConfigMap({ name: 'fg-child', namespace: 'default', body: { metadata: { finalizers: null } } }, merge);
    expect((await failure(core.readNamespacedConfigMap({ name: 'fg-child', namespace: 'default' }))).code).toBe(404);
    expect((await failure(core.readNamespacedConfigMap({ name: 'fg', namespace: 'default' }))).code).toBe(404);
  });

  test('DELETE collection with a label selector', async () => {
    await core.createNamespace({ body: { metadata: { name: 'dc' } } });
    for (const [name, l] of [['d1', 'x'], ['d2', 'x'], ['d3', 'y']] as const) {
      await core.createNamespacedConfigMap({ namespace: 'dc', body: { metadata: { name, labels: { l } } } });
    }
    await core.deleteCollectionNamespacedConfigMap({ namespace: 'dc', labelSelector: 'l=x' });
    expect((await core.listNamespacedConfigMap({ namespace: 'dc' })).items.map((c) => c.metadata?.name)).toEqual(['d3']);
  });
});

describe('RBAC', () => {
  beforeAll(async () => {
    await emu.applyManifests([
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'bot', namespace: 'default' } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'bot', namespace: 'default' },
        rules: [
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: [''], resources: ['secrets'], resourceNames: ['allowed'], verbs: ['get'] },
          { apiGroups: [WIDGET_GROUP], resources: ['widgets/status'], verbs: ['patch'] },
          { apiGroups: [WIDGET_GROUP], resources: ['widgets'], verbs: ['get'] },
        ],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'bot', namespace: 'default' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'bot' },
        subjects: [{ kind: 'ServiceAccount', name: 'bot', namespace: 'default' }],
      },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'ns-reader' }, rules: [{ apiGroups: ['*'], resources: ['namespaces'], verbs: ['*'] }] },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'bot-ns' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'ns-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'bot', namespace: 'default' }],
      },
      { apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget', metadata: { name: 'rb', namespace: 'default' }, spec: { size: 1 } },
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'allowed', namespace: 'default' } },
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'denied', namespace: 'default' } },
    ]);
  });

  test('a ServiceAccount token gets what its roles grant and a real 403 otherwise', async () => {
    const token = emu.issueServiceAccountToken('default', 'bot');
    const k = configForToken(token);
    const botCore = k.makeApiClient(CoreV1Api);
    const botCustom = k.makeApiClient(CustomObjectsApi);
    await botCore.listNamespacedConfigMap({ namespace: 'default' });
    await botCore.readNamespacedSecret({ name: 'allowed', namespace: 'default' });
    await botCore.listNamespace();
    const denied = await failure(botCore.readNamespacedSecret({ name: 'denied', namespace: 'default' }));
    expect(denied.code).toBe(403);
    expect(denied.status).toMatchObject({
      reason: 'Forbidden',
      message: 'secrets "denied" is forbidden: User "system:serviceaccount:default:bot" cannot get resource "secrets" in API group "" in the namespace "default"',
      details: { name: 'denied', kind: 'secrets', group: '' },
    });
    const create = await failure(botCore.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'nope' } } }));
    expect(create.status.message).toBe(
      'configmaps is forbidden: User "system:serviceaccount:default:bot" cannot create resource "configmaps" in API group "" in the namespace "default"',
    );
    const other = await failure(botCore.listNamespacedConfigMap({ namespace: 'kube-system' }));
    expect(other.code).toBe(403);
    const cluster = await failure(k.makeApiClient(CoordinationV1Api).listLeaseForAllNamespaces());
    expect(cluster.status.message).toBe(
      'leases.coordination.k8s.io is forbidden: User "system:serviceaccount:default:bot" cannot list resource "leases" in API group "coordination.k8s.io" at the cluster scope',
    );
    await botCustom.patchNamespacedCustomObjectStatus({ ...W, namespace: 'default', name: 'rb', body: { status: { phase: 'X' } } }, merge);
    const main = await failure(botCustom.patchNamespacedCustomObject({ ...W, namespace: 'default', name: 'rb', body: { spec: { size: 2 } } }, merge));
    expect(main.status.message).toBe(
      `widgets.${WIDGET_GROUP} "rb" is forbidden: User "system:serviceaccount:default:bot" cannot patch resource "widgets" in API group "${WIDGET_GROUP}" in the namespace "default"`,
    );
    expect(emu.requests.some((r) => r.user === 'system:serviceaccount:default:bot' && r.status === 403)).toBe(true);
  });

  test('no token is 401, an unknown token is 401, discovery is open', async () => {
    const none = await raw('/api/v1/namespaces/default/configmaps', { token: null });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    expect((await raw('/api/v1/namespaces/default/configmaps', { token: 'forged' })).status).toBe(401);
    expect((await raw('/api/v1', { token: null })).status).toBe(200);
  });

  test('SelfSubjectAccessReview answers for the caller', async () => {
    const token = emu.issueServiceAccountToken('default', 'bot');
    const ask = async (resourceAttributes: object): Promise<boolean> => {
      const res = await raw('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
        token,
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes } }),
      });
      expect(res.status).toBe(201);
      return ((await res.json()) as { status: { allowed: boolean } }).status.allowed;
    };
    expect(await ask({ namespace: 'default', verb: 'list', resource: 'configmaps' })).toBe(true);
    expect(await ask({ namespace: 'default', verb: 'delete', resource: 'configmaps' })).toBe(false);
    expect(await ask({ namespace: 'default', verb: 'patch', group: WIDGET_GROUP, resource: 'widgets', subresource: 'status' })).toBe(true);
  });
});

describe('faults and the request log', () => {
  test('error rates follow the seeded PRNG and only hit matching requests', async () => {
    emu.faults.reseed(123);
    emu.faults.set([{ verb: 'list', resource: 'configmaps', rate: 0.3, status: 503 }]);
    let failed = 0;
    for (let i = 0; i < 200; i++) {
      try {
        await core.listNamespacedConfigMap({ namespace: 'default', limit: 1 });
      } catch (err) {
        expect((err as { code?: number }).code).toBe(503);
        failed++;
      }
    }
    expect(failed).toBeGreaterThan(40);
    expect(failed).toBeLessThan(80);
    await core.readNamespace({ name: 'default' });
    const s = await failure(
      (async () => {
        emu.faults.set([{ verb: 'write', rate: 1, status: 409 }]);
        await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'never' } } });
      })(),
    );
    expect(s.status).toMatchObject({ code: 409, reason: 'Conflict' });
    emu.faults.clear();
    expect((await failure(core.readNamespacedConfigMap({ name: 'never', namespace: 'default' }))).code).toBe(404);
  });

  test('resets surface as transport errors; latency delays answers', async () => {
    emu.faults.set([{ verb: 'get', resource: 'namespaces', reset: true }]);
    let transport: unknown;
    try {
      await core.readNamespace({ name: 'default' });
    } catch (err) {
      transport = err;
    }
    expect(transport).toBeDefined();
    expect((transport as { code?: unknown }).code).not.toEqual(expect.any(Number));
    emu.faults.set([{ latencyMs: 80 }]);
    const t0 = Date.now();
    await core.readNamespace({ name: 'default' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(75);
  });

  test('the request log records verb, resource, user, status and duration', async () => {
    emu.resetRequests();
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'logged' } } });
    await core.readNamespacedConfigMap({ name: 'logged', namespace: 'default' });
    await core.listNamespacedConfigMap({ namespace: 'default' });
    await core.patchNamespacedConfigMap({ name: 'logged', namespace: 'default', body: { data: { a: 'b' } } }, merge);
    await core.deleteNamespacedConfigMap({ name: 'logged', namespace: 'default' });
    await failure(core.readNamespacedConfigMap({ name: 'logged', namespace: 'default' }));
    await custom.patchNamespacedCustomObjectStatus({ ...W, namespace: 'default', name: 'rb', body: { status: { phase: 'Y' } } }, merge);
    expect(emu.requests.map((r) => `${r.verb} ${r.resource}${r.subresource ? `/${r.subresource}` : ''} ${r.name ?? '-'} ${r.status}`)).toEqual([
      'create configmaps - 201',
      'get configmaps logged 200',
      'list configmaps - 200',
      'patch configmaps logged 200',
      'delete configmaps logged 200',
      'get configmaps logged 404',
      'patch widgets/status rb 200',
    ]);
    expect(emu.requests.every((r) => r.user === 'admin' && r.ms >= 0 && r.namespace === 'default')).toBe(true);
    expect(emu.requests[6]).toMatchObject({ group: WIDGET_GROUP, version: 'v1' });
  });
});

describe('in-process store API', () => {
  test('store writes reach HTTP watchers; HTTP writes reach store subscribers', async () => {
    const ref = { group: WIDGET_GROUP, version: 'v1', resource: 'widgets' };
    const seen: string[] = [];
    const unsubscribe = emu.store.subscribe({ resource: { apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget' }, namespace: 'default', labelSelector: 'sim=1' }, (e) =>
      seen.push(`${e.type} ${e.object.metadata.name} ${String((e.object.status as { phase?: string } | undefined)?.phase ?? '')}`),
    );
    const w = await watchEvents(`/apis/${WIDGET_GROUP}/v1/namespaces/default/widgets`, { labelSelector: 'sim=1', resourceVersion: emu.store.currentResourceVersion() });
    const created = emu.store.create(ref, { apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget', metadata: { name: 'sim', namespace: 'default', labels: { sim: '1' } }, spec: { size: 1 } });
    expect(created.metadata.uid).toBeTruthy();
    emu.store.updateStatus(ref, { ...created, status: { phase: 'Done' } });
    await custom.patchNamespacedCustomObject({ ...W, namespace: 'default', name: 'sim', body: { spec: { size: 2 } } }, merge);
    expect(() => emu.store.update(ref, { ...created, spec: { size: 5 } })).toThrow(/the object has been modified/);
    expect(emu.store.get(ref, { name: 'sim', namespace: 'default' })?.spec).toEqual({ size: 2, color: 'blue' });
    emu.store.patchMerge(ref, { name: 'sim', namespace: 'default' }, { status: { phase: 'Again' } }, { subresource: 'status' });
    expect(emu.store.list(ref, { namespace: 'default', labelSelector: 'sim=1' })).toHaveLength(1);
    emu.store.delete(ref, { name: 'sim', namespace: 'default' });
    await until(() => w.events.length >= 5);
    w.controller.abort();
    unsubscribe();
    expect(w.events.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'MODIFIED', 'MODIFIED', 'DELETED']);
    expect(seen).toEqual(['ADDED sim ', 'MODIFIED sim Done', 'MODIFIED sim Done', 'MODIFIED sim Again', 'DELETED sim Again']);
    emu.store.setPodLog('default', 'nopod', 'x');
    expect((await failure(core.readNamespacedPodLog({ name: 'nopod', namespace: 'default' }))).code).toBe(404);
  });

  test('pods/log returns the text simulated controllers set', async () => {
    await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'logpod' }, spec: { containers: [{ name: 'c', image: 'i' }] } } });
    expect((await core.readNamespacedPod({ name: 'logpod', namespace: 'default' })).status?.phase).toBe('Pending');
    emu.store.setPodLog('default', 'logpod', 'accuracy=0.97\n');
    expect(await core.readNamespacedPodLog({ name: 'logpod', namespace: 'default' })).toBe('accuracy=0.97\n');
  });
});
