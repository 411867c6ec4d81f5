import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { EventTypes } from '../../events/index.ts';
import { parseCatalog } from '../../runtime/catalog.ts';
import { createDeps } from '../../runtime/deps.ts';
import { serveStep, type RunningStep } from '../../runtime/faas.ts';
import { createLogger } from '../../runtime/logger.ts';
import { loadSettings } from '../../runtime/settings.ts';
import { corpusBody, deadUrl, loadCorpus, post, startRecordingSink, unusedKube, type RecordingSink } from '../../test/intake-kit.ts';
import { signBody } from './auth.ts';
import { gitEventId } from './decide.ts';
import { step } from './index.ts';

const SECRET = 'gh-hook-secret-8d1e5b';
const NOW = new Date('2024-04-02T10:10:00.000Z');
const DELIVERY = '72d3162e-cc78-11e3-81ab-4c9367dc0958';
const AFTER = '59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5';

// The fixture pushes to example/models on main, touching notebooks/anomaly-detector.ipynb and notebooks/anomaly-detector/features.py.
const fixture = readFileSync('events/fixtures/github/good-push.json', 'utf8');
const catalog = parseCatalog(`
defaults:
  notebook: { gitUrl: https://github.com/example/models.git, gitRef: main, image: img }
  features: { count: 5 }
  output: { kind: regression, width: 5 }
models:
  - name: anomaly-detector
    inferenceService: anomaly-detector
    notebook: { path: notebooks/anomaly-detector.ipynb }
  - name: features-watcher
    inferenceService: features-watcher
    notebook: { path: nb/fw.ipynb, gitUrl: "git@github.com:Example/Models.git" }
    git: { watchPaths: [notebooks/anomaly-detector/] }
  - name: predictive-analytics
    inferenceService: predictive-analytics
    notebook: { path: notebooks/predictive.ipynb }
  - name: on-release
    inferenceService: on-release
    notebook: { path: notebooks/anomaly-detector.ipynb, gitRef: release }
`);

function headers(body: string, event = 'push', delivery = DELIVERY, extra: Record<string, string> = {}): Record<string, string> {
  return { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': delivery, 'x-hub-signature-256': signBody(body, SECRET), ...extra };
}

const silent = (): Writable => new Writable({ write(_c, _e, done) { done(); } });
async function startIntake(env: Record<string, string>, logs: Writable = silent()): Promise<RunningStep> {
  const settings = loadSettings({ FUNCTION: 'git-intake', NAMESPACE: 'test', ...env });
  const logger = createLogger({ name: 'git-intake', level: 'info', secrets: [SECRET], destination: logs });
  return serveStep(step, createDeps(settings, { kube: unusedKube(), catalog, logger, clock: { now: () => NOW } }));
}

function expectedEvent(model: string, delivery = DELIVERY): Record<string, unknown> {
  return {
    id: gitEventId(delivery, model), type: EventTypes.trainingRequested, source: '/model-lifecycle/git-intake', time: NOW.toISOString(), model,
    data: { model, trigger: 'git', gitRef: 'main', requestedBy: 'octocat', reason: 'Remove old notebook', provenance: { commitSha: AFTER, deliveryId: delivery, pusher: 'octocat', repository: 'example/models' } },
  };
}

describe('git-intake over HTTP', () => {
  let sink: RecordingSink;
  let intake: RunningStep;
  const lines: string[] = [];

  beforeAll(async () => {
    sink = await startRecordingSink();
    intake = await startIntake({ K_SINK: sink.url, GITHUB_WEBHOOK_SECRET: SECRET }, new Writable({ write(c: Buffer, _e, done) { lines.push(c.toString()); done(); } }));
  });
  afterAll(async () => {
    await intake.close();
    await sink.close();
  });
  beforeEach(() => {
    sink.events.length = 0;
    sink.status = 202;
  });

  const received = (): Array<Record<string, unknown>> => [...sink.events]
    .sort((a, b) => (a.model as string).localeCompare(b.model as string))
    .map((e) => ({ id: e.id, type: e.type, source: e.source, time: e.time, model: e.model, data: e.data }));

  test('a push touching watched paths on the branch → one event per model, exact', async () => {
    const res = await post(intake.url, headers(fixture), fixture);
    expect(res).toEqual({
      status: 200,
      body: {
        accepted: ['anomaly-detector', 'features-watcher'],
        events: [gitEventId(DELIVERY, 'anomaly-detector'), gitEventId(DELIVERY, 'features-watcher')],
        ignored: [{ model: 'predictive-analytics', reason: 'no-watched-change' }, { model: 'on-release', reason: 'other-branch' }],
      },
    });
    expect(received()).toEqual([expectedEvent('anomaly-detector'), expectedEvent('features-watcher')]);
  });

  test('a redelivery (same delivery id) carries the same ids; a new delivery new ones', async () => {
    await post(intake.url, headers(fixture), fixture);
    await post(intake.url, headers(fixture), fixture);
    await post(intake.url, headers(fixture, 'push', 'another-delivery'), fixture);
    expect(sink.events.map((e) => e.id).sort()).toEqual([
      gitEventId(DELIVERY, 'anomaly-detector'), gitEventId(DELIVERY, 'anomaly-detector'), gitEventId(DELIVERY, 'features-watcher'), gitEventId(DELIVERY, 'features-watcher'),
      gitEventId('another-delivery', 'anomaly-detector'), gitEventId('another-delivery', 'features-watcher'),
    ].sort());
  });

  test('a form-encoded hook (payload=...) is read the same way, signed over the raw form body', async () => {
    const form = `payload=${encodeURIComponent(fixture)}`;
    const res = await post(intake.url, headers(form, 'push', DELIVERY, { 'content-type': 'application/x-www-form-urlencoded' }), form);
    expect(res.body).toMatchObject({ accepted: ['anomaly-detector', 'features-watcher'] });
    expect(received()).toEqual([expectedEvent('anomaly-detector'), expectedEvent('features-watcher')]);
  });

  test('a well-formed traceparent header is carried on the events', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await post(intake.url, headers(fixture, 'push', DELIVERY, { traceparent }), fixture);
    expect(sink.events.map((e) => e.traceparent)).toEqual([traceparent, traceparent]);
  });

  test('ping → pong with the zen', async () => {
    const ping = readFileSync('events/fixtures/github/good-ping.json', 'utf8');
    expect(await post(intake.url, headers(ping, 'ping'), ping)).toEqual({ status: 200, body: { pong: true, zen: 'Keep it logically awesome.' } });
    expect(sink.events).toEqual([]);
  });

  test('other events are acknowledged and ignored', async () => {
    const body = '{"action":"opened"}';
    expect(await post(intake.url, headers(body, 'pull_request'), body)).toEqual({ status: 200, body: { ignored: 'pull_request' } });
    expect(sink.events).toEqual([]);
  });

  test.each([
    ['a deleted branch', 'good-push-delete.json', 'branch-deleted'],
    ['a tag', 'good-push-tag.json', 'tag'],
  ])('%s is ignored', async (_name, file, reason) => {
    const body = readFileSync(`events/fixtures/github/${file}`, 'utf8');
    expect(await post(intake.url, headers(body), body)).toEqual({ status: 200, body: { accepted: [], events: [], ignored: [{ reason }] } });
    expect(sink.events).toEqual([]);
  });

  test('a push to another repository matches nothing', async () => {
    const body = fixture.replaceAll('example/models', 'someone/else');
    const res = await post(intake.url, headers(body), body);
    expect(res.body).toMatchObject({ accepted: [], events: [] });
    expect(sink.events).toEqual([]);
  });

  describe('bad and hostile inputs (test/corpus/git-intake.json)', () => {
    const corpus = loadCorpus('test/corpus/git-intake.json');
    test('the corpus has at least 12 entries', () => expect(corpus.length).toBeGreaterThanOrEqual(12));
    test.each(corpus.map((e) => [e.name, e] as const))('%s → 4xx, nothing sent', async (_name, entry) => {
      const body = corpusBody(entry);
      const h: Record<string, string> = { ...entry.headers };
      const hmac = (secret: string, text: string): string => createHmac('sha256', secret).update(text).digest('hex');
      if (entry.auth === 'valid') h['x-hub-signature-256'] = `sha256=${hmac(SECRET, body)}`;
      else if (entry.auth === 'wrong') h['x-hub-signature-256'] = `sha256=${hmac('not-the-secret', body)}`;
      else if (entry.auth === 'other-body') h['x-hub-signature-256'] = `sha256=${hmac(SECRET, `${body} `)}`;
      else if (entry.auth === 'sha1') h['x-hub-signature'] = `sha1=${createHmac('sha1', SECRET).update(body).digest('hex')}`;
      else if (entry.auth === 'truncated') h['x-hub-signature-256'] = `sha256=${hmac(SECRET, body).slice(0, 20)}`;
      const res = await post(intake.url, h, body);
      expect(res.status).toBe(entry.expectStatus);
      expect(Object.keys(res.body as object)).toEqual(['error', 'kind']);
      expect(JSON.stringify(res.body).length).toBeLessThan(700);
      expect(sink.events).toEqual([]);
    });
  });

  test('a failing broker → 503 so GitHub shows a failed delivery to redeliver', async () => {
    sink.status = 503;
    const res = await post(intake.url, headers(fixture), fixture);
    expect(res).toEqual({ status: 503, body: { error: 'broker did not take 2 of 2 events: broker answered 503', kind: 'retryable' } });
  });

  test('the secret never reaches a log line', () => {
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('')).not.toContain(SECRET);
  });
});

describe('git-intake without a reachable broker or a secret', () => {
  test('a broker that is down → 503', async () => {
    const intake = await startIntake({ K_SINK: await deadUrl(), GITHUB_WEBHOOK_SECRET: SECRET });
    try {
      const res = await post(intake.url, headers(fixture), fixture);
      expect(res.status).toBe(503);
      expect((res.body as { error: string }).error).toMatch(/^broker did not take 2 of 2 events: broker unreachable/);
    } finally {
      await intake.close();
    }
  });

  test('no secret configured → every request is 401 and the unset secret is logged once', async () => {
    const sink = await startRecordingSink();
    const lines: string[] = [];
    const intake = await startIntake({ K_SINK: sink.url }, new Writable({ write(c: Buffer, _e, done) { lines.push(c.toString()); done(); } }));
    try {
      for (const signature of [signBody(fixture, ''), signBody(fixture, 'guess'), '']) {
        const res = await post(intake.url, headers(fixture, 'push', DELIVERY, { 'x-hub-signature-256': signature }), fixture);
        expect(res).toEqual({ status: 401, body: { error: 'webhook authentication is not configured', kind: 'auth' } });
      }
      expect(lines.filter((l) => l.includes('GITHUB_WEBHOOK_SECRET is not set')).length).toBe(1);
      expect(sink.events).toEqual([]);
    } finally {
      await intake.close();
      await sink.close();
    }
  });
});
