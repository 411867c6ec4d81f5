import { Writable } from 'node:stream';
import { EventTypes } from '../../events/index.ts';
import { parseCatalog } from '../../runtime/catalog.ts';
import { createDeps } from '../../runtime/deps.ts';
import { serveStep, type RunningStep } from '../../runtime/faas.ts';
import { createLogger } from '../../runtime/logger.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { driftEventId } from './decide.ts';
import { step } from './index.ts';
import { corpusBody, deadUrl, loadCorpus, post, startRecordingSink, unusedKube, type RecordingSink } from '../../test/intake-kit.ts';

const TOKEN = 'drift-token-4f9c2a7e';
const NOW = new Date('2024-04-02T10:00:00.000Z');
const T0 = '2024-04-02T09:58:30.123456789Z';
const GROUP = '{}/{alertname="ModelDriftDetected"}:{alertname="ModelDriftDetected"}';

const catalog = parseCatalog(`
defaults:
  notebook: { gitUrl: https://github.com/example/models.git, gitRef: main, image: img }
  features: { count: 5 }
  output: { kind: regression, width: 5 }
models:
  - name: anomaly-detector
    inferenceService: anomaly-detector
    notebook: { path: nb/anomaly.ipynb }
  - name: predictive-analytics
    inferenceService: predictive-analytics
    notebook: { path: nb/predictive.ipynb }
  - name: paused
    inferenceService: paused
    enabled: false
    notebook: { path: nb/paused.ipynb }
`);

function alert(model: string, fingerprint: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    status: 'firing', labels: { alertname: 'ModelDriftDetected', model, severity: 'warning' }, annotations: {},
    startsAt: T0, endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint, ...extra,
  };
}
const webhook = (alerts: unknown[]): string => JSON.stringify({
  version: '4', groupKey: GROUP, truncatedAlerts: 0, status: 'firing', receiver: 'model-lifecycle',
  groupLabels: { alertname: 'ModelDriftDetected' }, commonLabels: {}, commonAnnotations: {}, externalURL: 'http://am:9093', alerts,
});
const authed = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };

function captureLogs(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString('utf8')); done(); } });
  return { lines, stream };
}

async function startIntake(env: Record<string, string>, logs?: Writable): Promise<RunningStep> {
  const settings = loadSettings({ FUNCTION: 'drift-intake', NAMESPACE: 'test', LOG_LEVEL: 'info', ...env });
  const logger = createLogger({ name: 'drift-intake', level: 'info', secrets: [TOKEN], destination: logs ?? new Writable({ write(_c, _e, done) { done(); } }) });
  return serveStep(step, createDeps(settings, { kube: unusedKube(), catalog, logger, clock: { now: () => NOW } }));
}

describe('drift-intake over HTTP', () => {
  let sink: RecordingSink;
  let intake: RunningStep;
  const logs = captureLogs();

  beforeAll(async () => {
    sink = await startRecordingSink();
    intake = await startIntake({ K_SINK: sink.url, DRIFT_INTAKE_TOKEN: TOKEN }, logs.stream);
  });
  afterAll(async () => {
    await intake.close();
    await sink.close();
  });
  beforeEach(() => {
    sink.events.length = 0;
    sink.status = 202;
    sink.delayMs = 0;
    sink.maxInFlight = 0;
  });

  test('a firing drift group → one training.requested per model, exact events', async () => {
    const body = webhook([
      alert('anomaly-detector', '5c6f8a4e1b2d3c4f', { annotations: { summary: 'Model input drift', description: 'PSI 0.31 > 0.2' }, generatorURL: 'http://prom:9090/graph?g0.expr=psi' }),
      alert('predictive-analytics', '7d8e9f0a1b2c3d4e'),
    ]);
    const res = await post(intake.url, authed, body);
    const idA = driftEventId('5c6f8a4e1b2d3c4f', T0, 'anomaly-detector');
    const idP = driftEventId('7d8e9f0a1b2c3d4e', T0, 'predictive-analytics');
    expect(res).toEqual({ status: 200, body: { accepted: 2, ignored: { resolved: 0, unrelated: 0, unknownModel: 0, disabled: 0 }, events: [idA, idP] } });
    const received = [...sink.events].sort((a, b) => (a.model as string).localeCompare(b.model as string));
    expect(received.map((e) => ({ id: e.id, type: e.type, source: e.source, specversion: e.specversion, time: e.time, model: e.model, datacontenttype: e.datacontenttype, data: e.data }))).toEqual([
      {
        id: idA, type: EventTypes.trainingRequested, source: '/model-lifecycle/drift-intake', specversion: '1.0', time: NOW.toISOString(), model: 'anomaly-detector', datacontenttype: 'application/json',
        data: { model: 'anomaly-detector', trigger: 'drift', requestedBy: 'alertmanager', reason: 'Model input drift: PSI 0.31 > 0.2', provenance: { alertFingerprint: '5c6f8a4e1b2d3c4f', alertName: 'ModelDriftDetected', groupKey: GROUP, startsAt: T0, generatorURL: 'http://prom:9090/graph?g0.expr=psi' } },
      },
      {
        id: idP, type: EventTypes.trainingRequested, source: '/model-lifecycle/drift-intake', specversion: '1.0', time: NOW.toISOString(), model: 'predictive-analytics', datacontenttype: 'application/json',
        data: { model: 'predictive-analytics', trigger: 'drift', requestedBy: 'alertmanager', provenance: { alertFingerprint: '7d8e9f0a1b2c3d4e', alertName: 'ModelDriftDetected', groupKey: GROUP, startsAt: T0 } },
      },
    ]);
  });

  test('re-sends of the same firing alert carry the same event id; a new firing gets a new one', async () => {
    const body = webhook([alert('anomaly-detector', 'aa11')]);
    const first = await post(intake.url, authed, body);
    const again = await post(intake.url, authed, body);
    const refired = await post(intake.url, authed, webhook([alert('anomaly-detector', 'aa11', { startsAt: '2024-04-09T00:00:00Z' })]));
    expect(first.status).toBe(200);
    expect(again).toEqual(first);
    expect(sink.events.map((e) => e.id)).toEqual([driftEventId('aa11', T0, 'anomaly-detector'), driftEventId('aa11', T0, 'anomaly-detector'), driftEventId('aa11', '2024-04-09T00:00:00Z', 'anomaly-detector')]);
    expect(refired.body).toMatchObject({ accepted: 1 });
  });

  test('a well-formed traceparent header is carried on the events; a malformed one is dropped', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await post(intake.url, { ...authed, traceparent }, webhook([alert('anomaly-detector', 'tp1')]));
    await post(intake.url, { ...authed, traceparent: '00-bogus-01' }, webhook([alert('anomaly-detector', 'tp2')]));
    expect(sink.events.map((e) => e.traceparent)).toEqual([traceparent, undefined]);
  });

  test('resolved, unrelated, unknown and disabled alerts are counted and not sent', async () => {
    const res = await post(intake.url, authed, webhook([
      alert('anomaly-detector', 'ok1'),
      alert('anomaly-detector', 'r1', { status: 'resolved', endsAt: '2024-04-02T10:00:00Z' }),
      { ...alert('anomaly-detector', 'u1'), labels: { alertname: 'KubePodCrashLooping', model: 'anomaly-detector' } },
      alert('no-such-model', 'x1'),
      alert('paused', 'd1'),
    ]));
    expect(res).toEqual({ status: 200, body: { accepted: 1, ignored: { resolved: 1, unrelated: 1, unknownModel: 1, disabled: 1 }, events: [driftEventId('ok1', T0, 'anomaly-detector')] } });
    expect(sink.events.map((e) => e.model)).toEqual(['anomaly-detector']);
  });

  test('a resolved-only group is a 200 with nothing sent', async () => {
    const res = await post(intake.url, authed, webhook([alert('anomaly-detector', 'r1', { status: 'resolved' })]));
    expect(res).toEqual({ status: 200, body: { accepted: 0, ignored: { resolved: 1, unrelated: 0, unknownModel: 0, disabled: 0 }, events: [] } });
    expect(sink.events).toEqual([]);
  });

  test('the bearer scheme is case-insensitive; a bad or missing token is 401 and sends nothing', async () => {
    const body = webhook([alert('anomaly-detector', 'auth1')]);
    expect((await post(intake.url, { 'content-type': 'application/json', authorization: `bearer ${TOKEN}` }, body)).status).toBe(200);
    sink.events.length = 0;
    for (const authorization of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, 'Bearer ', TOKEN, `Bearer ${TOKEN} extra`]) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (authorization !== undefined) headers.authorization = authorization;
      const res = await post(intake.url, headers, body);
      expect({ authorization, res }).toEqual({ authorization, res: { status: 401, body: { error: 'missing or wrong bearer token', kind: 'auth' } } });
    }
    expect(sink.events).toEqual([]);
  });

  describe('bad and hostile inputs (test/corpus/drift-intake.json)', () => {
    const corpus = loadCorpus('test/corpus/drift-intake.json');
    test('the corpus has at least 12 entries', () => expect(corpus.length).toBeGreaterThanOrEqual(12));
    test.each(corpus.map((e) => [e.name, e] as const))('%s → 4xx, nothing sent', async (_name, entry) => {
      const headers: Record<string, string> = { ...entry.headers };
      if (entry.auth === 'valid') headers.authorization = `Bearer ${TOKEN}`;
      else if (entry.auth === 'wrong') headers.authorization = 'Bearer not-the-token';
      else if (entry.auth === 'basic') headers.authorization = `Basic ${TOKEN}`;
      const res = await post(intake.url, headers, corpusBody(entry));
      expect(res.status).toBe(entry.expectStatus);
      expect(Object.keys(res.body as object)).toEqual(['error', 'kind']);
      // A refusal never echoes a payload's bulk.
      expect(JSON.stringify(res.body).length).toBeLessThan(700);
      expect(sink.events).toEqual([]);
    });
  });

  test('events go out in parallel, at most 16 at a time', async () => {
    sink.delayMs = 20;
    const alerts = Array.from({ length: 100 }, (_, i) => alert('anomaly-detector', `bulk${i}`));
    const res = await post(intake.url, authed, webhook(alerts));
    expect(res.body).toMatchObject({ accepted: 100 });
    expect(new Set(sink.events.map((e) => e.id)).size).toBe(100);
    expect(sink.maxInFlight).toBeGreaterThan(1);
    expect(sink.maxInFlight).toBeLessThanOrEqual(16);
  });

  test('a failing broker → 503 so Alertmanager retries', async () => {
    sink.status = 500;
    const res = await post(intake.url, authed, webhook([alert('anomaly-detector', 'f1'), alert('predictive-analytics', 'f2')]));
    expect(res).toEqual({ status: 503, body: { error: 'broker did not take 2 of 2 events: broker answered 500', kind: 'retryable' } });
  });

  test('the token never reaches a log line', () => {
    expect(logs.lines.length).toBeGreaterThan(0);
    expect(logs.lines.join('')).not.toContain(TOKEN);
  });
});

describe('drift-intake without a reachable broker or a token', () => {
  test('a broker that is down → 503', async () => {
    const intake = await startIntake({ K_SINK: await deadUrl(), DRIFT_INTAKE_TOKEN: TOKEN });
    try {
      const res = await post(intake.url, authed, webhook([alert('anomaly-detector', 'down1')]));
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ kind: 'retryable', error: expect.stringMatching(/^broker did not take 1 of 1 events: broker unreachable/) as unknown });
    } finally {
      await intake.close();
    }
  });

  test('no K_SINK → 503 (retry once the SinkBinding is fixed)', async () => {
    const intake = await startIntake({ DRIFT_INTAKE_TOKEN: TOKEN });
    try {
      const res = await post(intake.url, authed, webhook([alert('anomaly-detector', 'nosink')]));
      expect(res.status).toBe(503);
    } finally {
      await intake.close();
    }
  });

  test('no token configured → every request is 401 and the unset secret is logged once', async () => {
    const sink = await startRecordingSink();
    const logs = captureLogs();
    const intake = await startIntake({ K_SINK: sink.url }, logs.stream);
    try {
      for (const authorization of ['Bearer ', 'Bearer anything', '']) {
        const res = await post(intake.url, { 'content-type': 'application/json', authorization }, webhook([alert('anomaly-detector', 'n1')]));
        expect(res).toEqual({ status: 401, body: { error: 'webhook authentication is not configured', kind: 'auth' } });
      }
      expect(logs.lines.filter((l) => l.includes('DRIFT_INTAKE_TOKEN is not set')).length).toBe(1);
      expect(sink.events).toEqual([]);
    } finally {
      await intake.close();
      await sink.close();
    }
  });
});
