// The step host: the one place errors become HTTP statuses, health and metrics endpoints, body limits.
import { CloudEvent, HTTP } from 'cloudevents';
import { serveStep, type RunningStep } from './host.ts';
import { invalid, permanent, retryable, unauthorized } from './errors.ts';
import { loadSettings } from './settings.ts';
import { silentLogger } from './logger.ts';
import { parseCatalog } from './catalog.ts';
import { empty, reply, type StepDeps, type StepDefinition } from './step.ts';
import type { KubePort } from './kube.ts';

const catalog = parseCatalog(`models:
  - name: m
    inferenceService: m
    notebook: { gitUrl: https://e/r.git, gitRef: main, path: a.ipynb, image: i }
    features: { count: 1 }
    output: { kind: regression, width: 1 }
`);

function deps(): StepDeps {
  return {
    settings: loadSettings({ NAMESPACE: 'ns', MAX_BODY_BYTES: '2048' }),
    logger: silentLogger(),
    catalog,
    kube: {} as KubePort,
    sink: { send: () => Promise.resolve() },
    clock: { now: () => new Date('2026-11-22T00:00:00Z') },
    fetch,
  };
}

// A step whose behaviour is chosen by the event's data, so every branch of the host is driven for real.
const echo: StepDefinition = {
  name: 'host-test',
  input: 'cloudevent',
  handle(input) {
    if (input.kind !== 'event') throw new Error('not an event');
    const what = (input.event.data as { what?: string } | undefined)?.what;
    switch (what) {
      case 'invalid': return Promise.reject(invalid('bad field x'));
      case 'permanent': return Promise.reject(permanent('unknown model'));
      case 'auth': return Promise.reject(unauthorized('bad token'));
      case 'retry': return Promise.reject(retryable('api down'));
      case 'boom': return Promise.reject(new TypeError('undefined is not a function'));
      case 'empty': return Promise.resolve(empty);
      default: return Promise.resolve(reply(new CloudEvent({ type: 'dev.mlops.test.replied.v1', source: '/host-test', id: `re-${input.event.id}`, data: { ok: true } })));
    }
  },
};

describe('step host', () => {
  let running: RunningStep;
  beforeAll(async () => { running = await serveStep(echo, deps(), { port: 0 }); });
  afterAll(async () => { await running.close(); });

  const post = async (data: unknown, id = 'e1'): Promise<Response> => {
    const m = HTTP.binary(new CloudEvent({ type: 'dev.mlops.test.v1', source: '/t', id, data }));
    return fetch(running.url, { method: 'POST', headers: m.headers as Record<string, string>, body: m.body as string });
  };

  test('a reply is a binary-mode CloudEvent; empty is 204', async () => {
    const res = await post({ what: 'reply' }, 'abc');
    expect(res.status).toBe(200);
    expect(res.headers.get('ce-id')).toBe('re-abc');
    expect(res.headers.get('ce-type')).toBe('dev.mlops.test.replied.v1');
    expect(await res.json()).toEqual({ ok: true });
    expect((await post({ what: 'empty' })).status).toBe(204);
  });

  test.each([
    ['invalid', 400, 'invalid'], ['permanent', 422, 'permanent'], ['auth', 401, 'auth'], ['retry', 503, 'retryable'],
    // An unknown error is retried, never dead-lettered as if the input were bad; its message is one line.
    ['boom', 503, 'retryable'],
  ])('%s → %i', async (what, status, kind) => {
    const res = await post({ what });
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ kind });
  });

  test('not a CloudEvent, wrong method, oversize body', async () => {
    expect((await fetch(running.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(400);
    expect((await fetch(running.url, { method: 'PUT', body: 'x' })).status).toBe(400);
    const big = await post({ what: 'reply', pad: 'x'.repeat(4096) });
    expect(big.status).toBe(400);
    expect(((await big.json()) as { error: string }).error).toMatch(/exceeds the 2048-byte limit/);
  });

  test('health endpoints and Prometheus metrics', async () => {
    expect((await fetch(`${running.url}/health/readiness`)).status).toBe(200);
    expect((await fetch(`${running.url}/health/liveness`)).status).toBe(200);
    const metrics = await (await fetch(`${running.url}/metrics`)).text();
    expect(metrics).toMatch(/mlops_events_total\{step="host-test",type="dev\.mlops\.test\.v1",status="200"\} \d+/);
    expect(metrics).toMatch(/mlops_events_total\{step="host-test",type="dev\.mlops\.test\.v1",status="503"\} \d+/);
    for (const name of ['mlops_event_duration_seconds', 'mlops_runs_total', 'mlops_step_duration_seconds', 'mlops_gate_verdicts_total', 'mlops_notifications_total', 'mlops_model_age_seconds']) {
      expect(metrics).toContain(`# TYPE ${name}`);
    }
  });
});
