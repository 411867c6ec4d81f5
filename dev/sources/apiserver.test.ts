import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloudEvent } from 'cloudevents';
import { describe, expect, test } from '@jest/globals';
import { startEmulator } from '../emulator/index.ts';
import {
  guessPlural,
  labelSelectorString,
  seededRandom,
  shapeWindow,
  sinkBindingEnv,
  startApiServerSources,
  watchViaKubeconfig,
  type WatchEventType,
  type WatchFn,
} from './index.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function apiServerSource(name: string, spec: Record<string, unknown>): object {
  return { apiVersion: 'sources.knative.dev/v1', kind: 'ApiServerSource', metadata: { name, namespace: 'mlops' }, spec: { mode: 'Resource', sink: { ref: { kind: 'Broker', name: 'default' } }, ...spec } };
}

type WatchArgs = Parameters<WatchFn>[0];

/** An in-test WatchFn: records each watch's arguments and lets the test push events to it. */
function fakeWatch() {
  const watches: Array<{ args: WatchArgs; emit: (type: WatchEventType, obj: object) => void; stopped: boolean }> = [];
  const watch: WatchFn = (args, onEvent) => {
    const w = { args, emit: onEvent, stopped: false };
    watches.push(w);
    return Promise.resolve(() => {
      w.stopped = true;
    });
  };
  return { watch, watches };
}

function collector() {
  const events: CloudEvent<unknown>[] = [];
  return {
    events,
    sink: (ce: CloudEvent<unknown>) => {
      events.push(ce);
      return Promise.resolve();
    },
  };
}

const nvj = (name: string, phase: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'mlops.mlops.dev/v1alpha1',
  kind: 'NotebookValidationJob',
  metadata: { name, namespace: 'mlops', labels, resourceVersion: '7' },
  status: { phase },
});

describe('ApiServerSource', () => {
  test('selectors become label selector strings on the watch, namespaced to the source', async () => {
    const { watch, watches } = fakeWatch();
    const sources = await startApiServerSources({
      sources: [
        apiServerSource('nvjs', {
          resources: [
            {
              apiVersion: 'mlops.mlops.dev/v1alpha1',
              kind: 'NotebookValidationJob',
              selector: {
                matchLabels: { 'app.kubernetes.io/managed-by': 'model-lifecycle' },
                matchExpressions: [
                  { key: 'mlops.dev/model', operator: 'In', values: ['predictive-analytics', 'anomaly-detector'] },
                  { key: 'mlops.dev/step', operator: 'NotIn', values: ['gate'] },
                  { key: 'mlops.dev/run', operator: 'Exists' },
                  { key: 'skip', operator: 'DoesNotExist' },
                ],
              },
            },
            { apiVersion: 'v1', kind: 'Pod' },
          ],
        }),
        apiServerSource('cluster-wide', { resources: [{ apiVersion: 'batch/v1', kind: 'Job' }], namespaceSelector: { matchLabels: { team: 'ml' } } }),
      ],
      sink: collector().sink,
      watch,
    });
    expect(watches.map((w) => w.args)).toEqual([
      {
        apiVersion: 'mlops.mlops.dev/v1alpha1',
        kind: 'NotebookValidationJob',
        namespace: 'mlops',
        labelSelector: 'app.kubernetes.io/managed-by=model-lifecycle,mlops.dev/model in (anomaly-detector,predictive-analytics),mlops.dev/step notin (gate),mlops.dev/run,!skip',
      },
      { apiVersion: 'v1', kind: 'Pod', namespace: 'mlops' },
      { apiVersion: 'batch/v1', kind: 'Job' }, // namespaceSelector: all namespaces, the selector is not evaluated
    ]);
    sources.stop();
    expect(watches.every((w) => w.stopped)).toBe(true);
  });

  test('add/update/delete events in Resource mode carry the object, subject, source, ids and ceOverrides', async () => {
    const { watch, watches } = fakeWatch();
    const { events, sink } = collector();
    const sources = await startApiServerSources({
      sources: [apiServerSource('nvjs', { resources: [{ apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' }], ceOverrides: { extensions: { step: 'track-training' } } })],
      sink,
      watch,
    });
    const w = watches[0]!;
    w.emit('ADDED', nvj('run-1', 'Pending'));
    w.emit('MODIFIED', nvj('run-1', 'Succeeded'));
    w.emit('DELETED', nvj('run-1', 'Succeeded'));
    await sources.flushed();
    expect(events.map((e) => [e.type, (e.data as { status: { phase: string } }).status.phase])).toEqual([
      ['dev.knative.apiserver.resource.add', 'Pending'],
      ['dev.knative.apiserver.resource.update', 'Succeeded'],
      ['dev.knative.apiserver.resource.delete', 'Succeeded'],
    ]);
    const e = events[0]!;
    expect(e.source).toBe('https://kubernetes.default.svc');
    expect(e.subject).toBe('/apis/mlops.mlops.dev/v1alpha1/namespaces/mlops/notebookvalidationjobs/run-1');
    expect(e.datacontenttype).toBe('application/json');
    expect(e.data).toEqual(nvj('run-1', 'Pending'));
    expect([e['kind'], e['name'], e['namespace'], e['step']]).toEqual(['NotebookValidationJob', 'run-1', 'mlops', 'track-training']);
    expect(new Set(events.map((x) => x.id)).size).toBe(3);
    expect(events.every((x) => UUID.test(x.id))).toBe(true);
    sources.stop();
    w.emit('ADDED', nvj('run-2', 'Pending')); // after stop: nothing
    await sources.flushed();
    expect(events).toHaveLength(3);
  });

  test('Reference mode (the Knative default) sends a reference, and owner filters by ownerReferences', async () => {
    const { watch, watches } = fakeWatch();
    const { events, sink } = collector();
    const sources = await startApiServerSources({
      sources: [
        { ...apiServerSource('pods', {}), spec: { resources: [{ apiVersion: 'v1', kind: 'Pod' }], owner: { apiVersion: 'batch/v1', kind: 'Job' } } },
      ],
      sink,
      watch,
      sourceUri: 'https://127.0.0.1:6443',
    });
    const pod = (name: string, owner?: string) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'mlops', ...(owner ? { ownerReferences: [{ apiVersion: 'batch/v1', kind: owner, name: 'j', uid: 'u' }] } : {}) },
    });
    watches[0]!.emit('ADDED', pod('owned', 'Job'));
    watches[0]!.emit('ADDED', pod('orphan'));
    watches[0]!.emit('ADDED', pod('other-owner', 'CronJob'));
    await sources.flushed();
    expect(events.map((e) => [e.type, e.source, e.subject, e.data])).toEqual([
      ['dev.knative.apiserver.ref.add', 'https://127.0.0.1:6443', '/apis/v1/namespaces/mlops/pods/owned', { apiVersion: 'v1', kind: 'Pod', name: 'owned', namespace: 'mlops' }],
    ]);
    sources.stop();
  });

  test('the sink sees events in watch order even when it is slow', async () => {
    const { watch, watches } = fakeWatch();
    const seen: string[] = [];
    const sources = await startApiServerSources({
      sources: [apiServerSource('nvjs', { resources: [{ apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' }] })],
      sink: async (ce) => {
        await new Promise((r) => setTimeout(r, ce.type.endsWith('add') ? 30 : 0));
        seen.push(ce.type);
      },
      watch,
    });
    watches[0]!.emit('ADDED', nvj('a', 'Pending'));
    watches[0]!.emit('MODIFIED', nvj('a', 'Running'));
    await sources.flushed();
    expect(seen).toEqual(['dev.knative.apiserver.resource.add', 'dev.knative.apiserver.resource.update']);
    sources.stop();
  });

  test('invalid sources fail at start', async () => {
    const { watch } = fakeWatch();
    await expect(startApiServerSources({ sources: [apiServerSource('empty', { resources: [] })], sink: collector().sink, watch })).rejects.toThrow(/ApiServerSource empty: spec\.resources/);
    await expect(
      startApiServerSources({
        sources: [apiServerSource('bad-sel', { resources: [{ apiVersion: 'v1', kind: 'Pod', selector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }] })],
        sink: collector().sink,
        watch,
      }),
    ).rejects.toThrow(/In on "a" needs values/);
  });

  test('plural guessing follows Kubernetes UnsafeGuessKindToResource', () => {
    expect(['Pod', 'Job', 'NotebookValidationJob', 'Ingress', 'Policy', 'Endpoints'].map(guessPlural)).toEqual([
      'pods',
      'jobs',
      'notebookvalidationjobs',
      'ingresses',
      'policies',
      'endpoints',
    ]);
    expect(labelSelectorString({})).toBeUndefined();
  });
});

describe('ApiServerSource fault knobs (seeded)', () => {
  // 3 objects × 4 states each, interleaved as a watch would see them: a0 b0 c0 a1 b1 c1 ...
  const feed = (): Array<{ name: string; phase: string }> => [0, 1, 2, 3].flatMap((i) => ['a', 'b', 'c'].map((n) => ({ name: n, phase: `p${i}` })));
  const summary = (events: CloudEvent<unknown>[]) => events.map((e) => `${(e.data as { metadata: { name: string } }).metadata.name}:${(e.data as { status: { phase: string } }).status.phase}`);

  async function run(faults: Parameters<typeof startApiServerSources>[0]['faults'], items = feed()) {
    const { watch, watches } = fakeWatch();
    const { events, sink } = collector();
    const sources = await startApiServerSources({
      sources: [apiServerSource('nvjs', { resources: [{ apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' }] })],
      sink, watch, faults: { windowMs: 30, ...faults },
    });
    for (const it of items) watches[0]?.emit('MODIFIED', nvj(it.name, it.phase));
    await sources.flushed();
    sources.stop();
    return { events: summary(events), stats: sources.stats() };
  }

  test('seededRandom is reproducible and uniform enough', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 10_000 }, () => a());
    expect(Array.from({ length: 10_000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Math.abs(xs.reduce((s, x) => s + x, 0) / xs.length - 0.5)).toBeLessThan(0.02);
    expect(seededRandom(43)()).not.toBe(seededRandom(42)());
  });

  test('no knobs: every event, in watch order', async () => {
    const r = await run({});
    expect(r.events).toEqual(feed().map((f) => `${f.name}:${f.phase}`));
    expect(r.stats).toEqual({ seen: 12, coalesced: 0, dropped: 0, delivered: 12 });
  });

  test('dropEvents: that share of deliveries is dropped, the same ones for the same seed', async () => {
    const many = Array.from({ length: 1000 }, (_, i) => ({ name: `n${i % 50}`, phase: `p${i}` }));
    const first = await run({ dropPercent: 30, seed: 7 }, many);
    const again = await run({ dropPercent: 30, seed: 7 }, many);
    const other = await run({ dropPercent: 30, seed: 8 }, many);
    expect(first.stats.dropped + first.stats.delivered).toBe(1000);
    expect(first.stats.dropped).toBeGreaterThan(250);
    expect(first.stats.dropped).toBeLessThan(350);
    expect(first.events).toHaveLength(first.stats.delivered);
    expect(again.events).toEqual(first.events);
    expect(other.events).not.toEqual(first.events);
    // What is delivered keeps watch order.
    const order = many.map((m) => `${m.name}:${m.phase}`);
    expect(first.events).toEqual(order.filter((x) => first.events.includes(x)));
    expect((await run({ dropPercent: 100, seed: 1 })).events).toEqual([]);
    expect((await run({ dropPercent: 0, seed: 1 })).events).toHaveLength(12);
  });

  test('coalesce: only the latest state of each object within the window', async () => {
    const r = await run({ coalesce: true, seed: 1 });
    expect(r.events).toEqual(['a:p3', 'b:p3', 'c:p3']);
    expect(r.stats).toEqual({ seen: 12, coalesced: 9, dropped: 0, delivered: 3 });
    // Events in different windows are not merged.
    const { watch, watches } = fakeWatch();
    const { events, sink } = collector();
    const sources = await startApiServerSources({ sources: [apiServerSource('nvjs', { resources: [{ apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' }] })], sink, watch, faults: { coalesce: true, windowMs: 20 } });
    watches[0]?.emit('MODIFIED', nvj('a', 'p0'));
    watches[0]?.emit('MODIFIED', nvj('a', 'p1'));
    await sources.flushed();
    watches[0]?.emit('DELETED', nvj('a', 'p2'));
    await sources.flushed();
    sources.stop();
    expect(events.map((e) => `${e.type}:${(e.data as { status: { phase: string } }).status.phase}`)).toEqual(['dev.knative.apiserver.resource.update:p1', 'dev.knative.apiserver.resource.delete:p2']);
  });

  test('reorder: deliveries shuffled across objects, each object in its own order, reproducible per seed', async () => {
    const r = await run({ reorder: true, seed: 3 });
    const again = await run({ reorder: true, seed: 3 });
    expect(again.events).toEqual(r.events);
    expect([...r.events].sort()).toEqual(feed().map((f) => `${f.name}:${f.phase}`).sort());
    expect(r.events).not.toEqual(feed().map((f) => `${f.name}:${f.phase}`));
    for (const n of ['a', 'b', 'c']) expect(r.events.filter((e) => e.startsWith(`${n}:`))).toEqual(['p0', 'p1', 'p2', 'p3'].map((p) => `${n}:${p}`));
    // Some seed gives a different order (the shuffle depends on the seed).
    const orders = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5]) orders.add((await run({ reorder: true, seed })).events.join(','));
    expect(orders.size).toBeGreaterThan(1);
  });

  test('shapeWindow: coalesce then reorder, exactly, for a fixed random sequence', () => {
    const batch = ['a', 'b', 'a', 'c', 'b'].map((object, i) => ({ object, item: i }));
    expect(shapeWindow(batch, { coalesce: true }, () => 0)).toEqual([{ object: 'a', item: 2 }, { object: 'c', item: 3 }, { object: 'b', item: 4 }]);
    // random() = 0.99 always takes the head of the last object still queued (objects in first-seen order a, b, c).
    expect(shapeWindow(batch, { reorder: true }, () => 0.99).map((p) => p.item)).toEqual([3, 1, 4, 0, 2]);
    expect(shapeWindow(batch, { coalesce: true, reorder: true }, () => 0.99).map((p) => p.item)).toEqual([4, 3, 2]);
    expect(shapeWindow(batch, {}, () => 0.5)).toEqual(batch);
  });

  test('stop loses what the window still held (an adapter restart)', async () => {
    const { watch, watches } = fakeWatch();
    const { events, sink } = collector();
    const sources = await startApiServerSources({ sources: [apiServerSource('nvjs', { resources: [{ apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' }] })], sink, watch, faults: { reorder: true, windowMs: 10_000 } });
    watches[0]?.emit('MODIFIED', nvj('a', 'p0'));
    sources.stop();
    await sources.flushed();
    expect(events).toEqual([]);
  });
});

describe('watchViaKubeconfig against the Kubernetes API emulator', () => {
  test('real HTTP watches deliver add/update/delete through an ApiServerSource, with selectors and discovery', async () => {
    const emu = await startEmulator();
    const dir = await mkdtemp(join(tmpdir(), 'sources-watch-'));
    let sources: { stop(): void; flushed(): Promise<void> } | undefined;
    try {
      const kubeconfig = join(dir, 'kubeconfig');
      await emu.writeKubeconfig(kubeconfig);
      await emu.applyManifests([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'mlops' } },
        {
          apiVersion: 'apiextensions.k8s.io/v1',
          kind: 'CustomResourceDefinition',
          metadata: { name: 'gizmos.example.dev' },
          spec: {
            group: 'example.dev',
            scope: 'Namespaced',
            names: { plural: 'gizmos', singular: 'gizmo', kind: 'Gizmo' },
            versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
          },
        },
      ]);
      // exists before the watch starts: arrives as an initial add, like an informer's list
      emu.store.create({ apiVersion: 'v1', kind: 'Pod' }, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'early', namespace: 'mlops', labels: { app: 'predictor' } }, spec: { containers: [] } });
      const { events, sink } = collector();
      sources = await startApiServerSources({
        sources: [
          apiServerSource('pods', { resources: [{ apiVersion: 'v1', kind: 'Pod', selector: { matchLabels: { app: 'predictor' } } }] }),
          apiServerSource('gizmos', { resources: [{ apiVersion: 'example.dev/v1', kind: 'Gizmo' }] }), // plural from discovery
        ],
        sink,
        watch: watchViaKubeconfig(kubeconfig),
      });
      const podSel = { apiVersion: 'v1', kind: 'Pod' };
      emu.store.create(podSel, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p1', namespace: 'mlops', labels: { app: 'predictor' } }, spec: { containers: [] } });
      emu.store.create(podSel, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'other', namespace: 'mlops', labels: { app: 'other' } }, spec: { containers: [] } });
      emu.store.create(podSel, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'elsewhere', namespace: 'default', labels: { app: 'predictor' } }, spec: { containers: [] } });
      emu.store.patchMerge(podSel, { name: 'p1', namespace: 'mlops' }, { metadata: { annotations: { touched: 'yes' } } });
      emu.store.delete(podSel, { name: 'p1', namespace: 'mlops' });
      emu.store.create({ apiVersion: 'example.dev/v1', kind: 'Gizmo' }, { apiVersion: 'example.dev/v1', kind: 'Gizmo', metadata: { name: 'g1', namespace: 'mlops' } });
      for (let i = 0; i < 250 && events.length < 5; i++) await new Promise((r) => setTimeout(r, 20));
      await sources.flushed();
      const podEvents = events.filter((e) => e['kind'] === 'Pod').map((e) => [e.type, e.subject]);
      expect(podEvents).toEqual([
        ['dev.knative.apiserver.resource.add', '/apis/v1/namespaces/mlops/pods/early'],
        ['dev.knative.apiserver.resource.add', '/apis/v1/namespaces/mlops/pods/p1'],
        ['dev.knative.apiserver.resource.update', '/apis/v1/namespaces/mlops/pods/p1'],
        ['dev.knative.apiserver.resource.delete', '/apis/v1/namespaces/mlops/pods/p1'],
      ]);
      const update = events.find((e) => e.type.endsWith('update'))!;
      expect((update.data as { metadata: { annotations: Record<string, string> } }).metadata.annotations).toEqual({ touched: 'yes' });
      expect(events.filter((e) => e['kind'] === 'Gizmo').map((e) => [e.type, e.subject])).toEqual([
        ['dev.knative.apiserver.resource.add', '/apis/example.dev/v1/namespaces/mlops/gizmos/g1'],
      ]);
      expect(events).toHaveLength(5);
      // a kind the server does not serve fails clearly
      await expect(watchViaKubeconfig(kubeconfig)({ apiVersion: 'example.dev/v1', kind: 'Nope' }, () => undefined)).rejects.toThrow(
        /does not serve Nope in example.dev\/v1/,
      );
    } finally {
      sources?.stop();
      await emu.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
  test('a watch stream that ends is resumed from the last resourceVersion: no lost or repeated events', async () => {
    const emu = await startEmulator();
    const dir = await mkdtemp(join(tmpdir(), 'sources-watch-'));
    let stop: (() => void) | undefined;
    try {
      const kubeconfig = join(dir, 'kubeconfig');
      await emu.writeKubeconfig(kubeconfig);
      await emu.applyManifests([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'mlops' } }]);
      const seen: string[] = [];
      const watch = watchViaKubeconfig(kubeconfig, { timeoutSeconds: 1, retryDelayMs: 50 });
      stop = await watch({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'mlops' }, (type, obj: { metadata: { name: string } }) => {
        seen.push(`${type} ${obj.metadata.name}`);
      });
      const cm = { apiVersion: 'v1', kind: 'ConfigMap' };
      emu.store.create(cm, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'before', namespace: 'mlops' } });
      await new Promise((r) => setTimeout(r, 1600)); // the server ends the stream after 1 s
      emu.store.create(cm, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after', namespace: 'mlops' } });
      for (let i = 0; i < 150 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 100));
      expect(seen).toEqual(['ADDED before', 'ADDED after']);
      expect(emu.requests.filter((r) => r.verb === 'watch').length).toBeGreaterThanOrEqual(2);
    } finally {
      stop?.();
      await emu.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('SinkBinding', () => {
  const binding = (name: string, subject: string, extra: Record<string, unknown> = {}) => ({
    apiVersion: 'sources.knative.dev/v1',
    kind: 'SinkBinding',
    metadata: { name, namespace: 'mlops' },
    spec: { subject: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: subject }, sink: { ref: { apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', name: 'default' } }, ...extra },
  });
  const resolve = (ref: { kind: string; name: string; namespace?: string }) =>
    ref.kind === 'Broker' && ref.name === 'default' && ref.namespace === 'mlops' ? 'http://127.0.0.1:9999/mlops/default' : undefined;

  test('K_SINK and K_CE_OVERRIDES for the bound subject, nothing for others', () => {
    const bindings = [binding('drift', 'drift-intake', { ceOverrides: { extensions: { origin: 'alertmanager' } } }), binding('git', 'git-intake')];
    expect(sinkBindingEnv(bindings, 'drift-intake', resolve)).toEqual({
      K_SINK: 'http://127.0.0.1:9999/mlops/default',
      K_CE_OVERRIDES: '{"extensions":{"origin":"alertmanager"}}',
    });
    expect(sinkBindingEnv(bindings, 'git-intake', resolve)).toEqual({ K_SINK: 'http://127.0.0.1:9999/mlops/default' });
    expect(sinkBindingEnv(bindings, 'notify', resolve)).toEqual({});
  });

  test('a uri sink, an unresolvable sink and two bindings for one subject', () => {
    expect(sinkBindingEnv([binding('u', 'fn', { sink: { uri: 'http://127.0.0.1:1234/x' } })], 'fn', resolve)).toEqual({ K_SINK: 'http://127.0.0.1:1234/x' });
    expect(() => sinkBindingEnv([binding('lost', 'fn', { sink: { ref: { kind: 'Broker', name: 'missing' } } })], 'fn', resolve)).toThrow(
      'SinkBinding lost: its sink could not be resolved',
    );
    expect(() => sinkBindingEnv([binding('a', 'fn'), binding('b', 'fn')], 'fn', resolve)).toThrow('SinkBindings a, b all bind fn; only one may');
  });
});
