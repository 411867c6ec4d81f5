// A step is one folder that declares itself (runtime/declare.ts, functions/registry.ts): a throwaway step declared
// here, in the test and nowhere else, shows up in what `mlops render` emits (Service, ServiceAccount, Role,
// RoleBinding, Triggers, EventPolicy) and, under `mlops dev`'s wiring (dev/local.ts), receives events through
// the local broker and calls the API with exactly the rights its Role grants.
import { execFileSync } from 'node:child_process';
import { CloudEvent, HTTP } from 'cloudevents';
import { startLocal } from '../dev/local.ts';
import { EventTypes, Extensions } from '../events/catalog.ts';
import { ApiServerEventTypes } from '../events/upstream/apiserversource.ts';
import { Consumes, INTAKE_STEPS, RECONCILE_TARGETS, STEPS, STEP_NAMES, StepLoaders } from '../functions/registry.ts';
import { renderManifests, triggerSpecs } from '../config/render.ts';
import { ROUTE_EXTENSION, declareStep, triggersOf } from '../runtime/declare.ts';
import { loadCatalog } from '../runtime/catalog.ts';
import { ForbiddenError } from '../runtime/errors.ts';
import { Resources } from '../runtime/resources.ts';
import { Emitters } from '../runtime/senders.ts';
import { empty, type StepDefinition } from '../runtime/step.ts';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: Record<string, unknown>; rules?: unknown };

const PROBE_TYPE = 'dev.example.probe.v1';
const catalog = loadCatalog('config/models.yaml');

/** What the throwaway step saw: each event's type, and whether its API calls were allowed. */
const seen: Array<{ type: string; token: string | undefined; listRuns: 'ok' | 'forbidden' | 'error'; listPods: 'ok' | 'forbidden' | 'error' }> = [];
const outcome = async (call: () => Promise<unknown>): Promise<'ok' | 'forbidden' | 'error'> => {
  try {
    await call();
    return 'ok';
  } catch (err) {
    return err instanceof ForbiddenError ? 'forbidden' : 'error';
  }
};
const probe: StepDefinition = {
  name: 'probe-step',
  input: 'cloudevent',
  async handle(input, deps) {
    if (input.kind !== 'event') return empty;
    seen.push({
      type: input.event.type,
      token: deps.settings.secrets.declared.PROBE_TOKEN,
      listRuns: await outcome(() => deps.kube.list(Resources.modelRun)),
      listPods: await outcome(() => deps.kube.list(Resources.pod)),
    });
    return empty;
  },
};
const throwaway = declareStep({
  name: 'probe-step',
  input: 'cloudevent',
  consumes: [{ name: 'probe', filter: { type: PROBE_TYPE } }],
  reconcile: true,
  secrets: ['PROBE_TOKEN'],
  rules: [{ apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['list'] }],
  load: () => Promise.resolve(probe),
});

const byKindName = (files: Record<string, object[]>, kind: string, name: string, namespace = 'ns'): Obj | undefined =>
  (Object.values(files).flat() as Obj[]).find((o) => o.kind === kind && o.metadata.name === name && (o.metadata.namespace ?? namespace) === namespace);

describe('a step declared in a test, nowhere else', () => {
  const without = renderManifests(catalog, { namespace: 'ns', image: 'img', senderAuth: true });
  const withProbe = renderManifests(catalog, { namespace: 'ns', image: 'img', senderAuth: true, steps: [...STEPS, throwaway] });

  test('render emits its Service, ServiceAccount, Role, RoleBinding, Triggers and EventPolicy (and only with it)', () => {
    const service = byKindName(withProbe, 'Service', 'probe-step');
    expect(service?.metadata.labels).toMatchObject({ 'mlops.dev/step': 'probe-step', 'networking.knative.dev/visibility': 'cluster-local' });
    expect(service?.metadata.labels).not.toHaveProperty('mlops.dev/sink-binding');
    const template = (service?.spec as { template: { spec: { serviceAccountName: string; containers: Array<{ env: Array<{ name: string; value?: string; valueFrom?: unknown }> }> } } }).template.spec;
    expect(template.serviceAccountName).toBe('mlops-probe-step');
    expect(template.containers[0]?.env).toEqual(expect.arrayContaining([
      { name: 'FUNCTION', value: 'probe-step' },
      { name: 'PROBE_TOKEN', valueFrom: { secretKeyRef: { name: 'model-lifecycle-secrets', key: 'PROBE_TOKEN', optional: true } } },
    ]));
    expect(byKindName(withProbe, 'ServiceAccount', 'mlops-probe-step')).toBeDefined();
    expect(byKindName(withProbe, 'Role', 'mlops-probe-step')?.rules).toEqual([{ apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['list'] }]);
    expect(byKindName(withProbe, 'RoleBinding', 'mlops-probe-step')).toMatchObject({ roleRef: { kind: 'Role', name: 'mlops-probe-step' }, subjects: [{ kind: 'ServiceAccount', name: 'mlops-probe-step', namespace: 'ns' }] });
    expect(byKindName(withProbe, 'Trigger', 'probe-step-probe')?.spec).toEqual({
      broker: 'model-lifecycle', filter: { attributes: { type: PROBE_TYPE } },
      subscriber: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'probe-step', namespace: 'ns' } },
    });
    expect(byKindName(withProbe, 'Trigger', 'probe-step-reconcile')?.spec).toMatchObject({ filter: { attributes: { type: EventTypes.runReconcile, [Extensions.target]: 'probe-step' } } });
    // With --sender-auth only the Broker's Triggers to it may call it.
    expect(byKindName(withProbe, 'EventPolicy', 'probe-step-from-broker')?.spec).toMatchObject({ from: [
      { ref: { kind: 'Trigger', name: 'probe-step-probe' } }, { ref: { kind: 'Trigger', name: 'probe-step-reconcile' } },
    ] });
    // The same render without the declaration has none of it, and nothing else changes.
    for (const [kind, name] of [['Service', 'probe-step'], ['ServiceAccount', 'mlops-probe-step'], ['Role', 'mlops-probe-step'], ['Trigger', 'probe-step-probe'], ['EventPolicy', 'probe-step-from-broker']] as const) {
      expect([kind, name, byKindName(without, kind, name)]).toEqual([kind, name, undefined]);
    }
    const names = (files: Record<string, object[]>): string[] => (Object.values(files).flat() as Obj[]).map((o) => `${o.kind}/${o.metadata.name}`).filter((n) => !n.includes('probe-step'));
    expect(names(withProbe).sort()).toEqual(names(without).sort());
  });

  test('the local broker (mlops dev wiring) delivers to it; it reads its declared secret and gets exactly its Role', async () => {
    seen.length = 0;
    const local = await startLocal({ catalog, scenario: 'happy', env: { PROBE_TOKEN: 'probe-token-value' }, steps: [...STEPS, throwaway] });
    try {
      expect(Object.keys(local.steps)).toContain('probe-step');
      const post = async (ce: CloudEvent<unknown>): Promise<number> => {
        const message = HTTP.binary(ce);
        return (await fetch(local.broker.url, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string })).status;
      };
      expect(await post(new CloudEvent({ type: PROBE_TYPE, source: '/test', id: 'probe-1', datacontenttype: 'application/json', data: { hello: 'probe' } }))).toBe(202);
      expect(await post(new CloudEvent({
        type: EventTypes.runReconcile, source: '/model-lifecycle/watchdog', id: 'probe-2', datacontenttype: 'application/json', [Extensions.target]: 'probe-step',
        data: { model: 'anomaly-detector', run: 'anomaly-detector-0123456789', target: 'probe-step', reason: 'test' },
      }))).toBe(202);
      for (let i = 0; i < 200 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      await local.broker.idle(10_000);
    } finally {
      await local.close();
    }
    expect(seen).toEqual([
      { type: PROBE_TYPE, token: 'probe-token-value', listRuns: 'ok', listPods: 'forbidden' },
      { type: EventTypes.runReconcile, token: 'probe-token-value', listRuns: 'ok', listPods: 'forbidden' },
    ]);
  }, 60_000);
});

describe('the registry derives from the declarations', () => {
  test('one declaration per step, loaders by name, Consumes exactly what the Triggers filter on', () => {
    expect(STEP_NAMES).toEqual(STEPS.map((s) => s.name));
    expect(new Set(STEP_NAMES).size).toBe(STEP_NAMES.length);
    for (const s of STEPS) expect(StepLoaders[s.name]).toBe(s.load);
    const routed = new Set(triggerSpecs().map((t) => `${t.subscriber} ${t.filter.type}`));
    expect([...routed].sort()).toEqual(STEP_NAMES.flatMap((s) => Consumes[s].map((type) => `${s} ${type}`)).sort());
    expect(INTAKE_STEPS).toEqual(['drift-intake', 'git-intake']);
    expect(RECONCILE_TARGETS).toEqual(['start-training', 'track-training', 'copy-gpu-model', 'gate-health', 'restart-predictor', 'verify-endpoint']);
  });

  test('who may send the events that change what is served is derived from `emits`, and pinned here (docs/security.md)', () => {
    expect(Emitters).toEqual({
      [EventTypes.trainingSucceeded]: ['track-training', 'argocd-sync'],
      [EventTypes.modelCopied]: ['copy-gpu-model'],
      [EventTypes.modelApproved]: ['gate-health'],
      [EventTypes.predictorRestarted]: ['restart-predictor'],
      [EventTypes.deploymentFailed]: ['verify-endpoint', 'watchdog'],
    });
  });

  test('every route a Trigger filters on is stamped by a declared source, and every source has a Trigger', () => {
    const sources = STEPS.flatMap((s) => [
      // Reference mode sends `ref.*` event types, Resource mode `resource.*` (knative/eventing pkg/apis/sources/constants.go).
      ...s.apiServerSources.map((src) => ({ route: src.route, types: (src.mode === 'Reference'
        ? [ApiServerEventTypes.refAdd, ApiServerEventTypes.refUpdate, ApiServerEventTypes.refDelete]
        : [ApiServerEventTypes.add, ApiServerEventTypes.update, ApiServerEventTypes.delete]) })),
      ...s.pingSources(catalog).map((p) => ({ route: p.route, types: ['dev.knative.sources.ping'] })),
    ]);
    for (const s of STEPS) {
      for (const t of triggersOf(s)) {
        const route = t.filter[ROUTE_EXTENSION];
        if (route === undefined) continue;
        expect([s.name, t.name, sources.some((src) => src.route === route && src.types.includes(t.filter.type))]).toEqual([s.name, t.name, true]);
      }
    }
    const filtered = new Set(STEPS.flatMap((s) => triggersOf(s).map((t) => t.filter[ROUTE_EXTENSION])));
    for (const src of sources) expect([src.route, filtered.has(src.route)]).toEqual([src.route, true]);
  });

  test('the registry and render load no step module (a process loads only its own step)', () => {
    // A child process records every module it loads (Node's synchronous module hooks).
    const script = [
      "import { registerHooks } from 'node:module';",
      'const loaded = [];',
      'registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });',
      "await import('./config/render.ts');",
      "const { StepLoaders } = await import('./functions/registry.ts');",
      'const before = loaded.filter((u) => /functions\\/[^/]+\\/index\\.ts$/.test(u));',
      'await StepLoaders.notify();',
      'const after = loaded.filter((u) => /functions\\/[^/]+\\/index\\.ts$/.test(u)).map((u) => u.split("/functions/")[1]);',
      'process.stdout.write(JSON.stringify({ before, after }));',
    ].join('\n');
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as { before: string[]; after: string[] };
    expect(out).toEqual({ before: [], after: ['notify/index.ts'] });
  });

  test('each declaration matches its module (name and input)', async () => {
    for (const s of STEPS) {
      const loaded = await s.load();
      expect([s.name, loaded.name, loaded.input]).toEqual([s.name, s.name, s.input]);
    }
  });

  test('what Kubernetes or Knative would refuse later is refused where the step is declared', () => {
    const load = (): Promise<StepDefinition> => Promise.resolve(probe);
    expect(() => declareStep({ name: 'Not_A_Label', input: 'cloudevent', load })).toThrow(/DNS-1123/);
    expect(() => declareStep({ name: 'x', input: 'cloudevent', consumes: [{ name: 'a', filter: { type: 't' } }, { name: 'a', filter: { type: 'u' } }], load })).toThrow(/two Triggers named "a"/);
    expect(() => declareStep({ name: 'x', input: 'cloudevent', reconcile: true, consumes: [{ name: 'reconcile', filter: { type: 't' } }], load })).toThrow(/two Triggers/);
    expect(() => declareStep({ name: 'x', input: 'cloudevent', consumes: [{ name: 'a', filter: { type: 't', 'Model-Name': 'm' } }], load })).toThrow(/not a CloudEvent attribute name/);
  });
});
