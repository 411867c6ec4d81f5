// The parser suite over real HTTP: every upstream fixture (events/fixtures/<source>, provenance in each
// folder's _provenance.json) is sent to the real function that consumes it, the way its upstream sender
// sends it: CloudEvents senders (Tekton, PingSource, ApiServerSource) in binary AND structured mode, the
// webhooks (Alertmanager, GitHub) as plain JSON. Assertions are on outcomes (runs, NVJs, events, reasons).
import { Writable } from 'node:stream';
import { CloudEvent } from 'cloudevents';
import { EventTypes, MESSAGE_MAX, labelSetFingerprint } from '../events/index.ts';
import { fixture } from '../events/fixtures/load.ts';
import { parseCatalog } from '../runtime/catalog.ts';
import { createDeps } from '../runtime/deps.ts';
import { serveStep, type RunningStep } from '../runtime/faas.ts';
import type { KubeObject } from '../runtime/kube.ts';
import { createLogger } from '../runtime/logger.ts';
import { Resources, type ModelRun } from '../runtime/resources.ts';
import { loadSettings } from '../runtime/settings.ts';
import { signBody } from '../functions/git-intake/auth.ts';
import { step as driftIntake } from '../functions/drift-intake/index.ts';
import { step as gitIntake } from '../functions/git-intake/index.ts';
import { step as startTraining } from '../functions/start-training/index.ts';
import { step as trackTraining } from '../functions/track-training/index.ts';
import { startRecordingSink as startIntakeSink, unusedKube, type RecordingSink as IntakeSink } from './intake-kit.ts';
import { HTTP } from 'cloudevents';
import { NAMESPACE, serveForTest, startRecordingSink, startTestCluster, type RecordingSink, type ServedStep, type TestCluster } from './kit.ts';

type Mode = 'binary' | 'structured';
const MODES: Mode[] = ['binary', 'structured'];
type Structured = Record<string, unknown> & { data?: unknown; data_base64?: string; datacontenttype?: string };

/**
 * A structured-mode fixture as the Go CloudEvents SDK (Tekton, Knative adapters) puts it on the wire.
 * Structured: the JSON itself, `application/cloudevents+json`. Binary: every attribute and extension as a
 * `ce-` header, `content-type` = datacontenttype, the body = the data bytes (data_base64 decoded, a JSON
 * value serialised, a string as is).
 */
function wire(ce: Structured, mode: Mode): { headers: Record<string, string>; body: string | Buffer | undefined } {
  if (mode === 'structured') return { headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' }, body: JSON.stringify(ce) };
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(ce)) {
    if (key === 'data' || key === 'data_base64' || key === 'datacontenttype' || value === undefined) continue;
    headers[`ce-${key}`] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  if (ce.datacontenttype) headers['content-type'] = ce.datacontenttype;
  let body: string | Buffer | undefined;
  if (typeof ce.data_base64 === 'string') body = Buffer.from(ce.data_base64, 'base64');
  else if (typeof ce.data === 'string') body = ce.data;
  else if (ce.data !== undefined) body = JSON.stringify(ce.data);
  return { headers, body };
}

interface Reply { status: number; body: string; event?: CloudEvent<unknown> }

async function send(url: string, ce: Structured, mode: Mode): Promise<Reply> {
  const { headers, body } = wire(ce, mode);
  const res = await fetch(url, { method: 'POST', headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  const out: Reply = { status: res.status, body: text };
  if (res.status === 200 && res.headers.get('ce-id')) {
    const h: Record<string, string> = {};
    res.headers.forEach((v, k) => { h[k] = v; });
    out.event = HTTP.toEvent({ headers: h, body: text }) as CloudEvent<unknown>;
  }
  return out;
}

const errorOf = (reply: Reply): string => (JSON.parse(reply.body) as { error: string }).error;

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  return { lines, stream: new Writable({ write(chunk: Buffer, _e, done) { lines.push(chunk.toString('utf8')); done(); } }) };
}

describe('CloudEvent senders → start-training / track-training over HTTP, binary and structured', () => {
  let cluster: TestCluster;
  let sink: RecordingSink;
  let start: ServedStep;
  let track: ServedStep;
  const logs = capture();

  beforeAll(async () => {
    cluster = await startTestCluster();
    sink = await startRecordingSink();
    start = await serveForTest(startTraining, { cluster, sinkUrl: sink.url, logger: createLogger({ name: 'start-training', level: 'debug', destination: logs.stream }) });
    track = await serveForTest(trackTraining, { cluster, sinkUrl: sink.url });
  });
  afterAll(async () => { await track.close(); await start.close(); await sink.close(); await cluster.close(); });

  const clean = (): void => {
    for (const [group, version, resource] of [['lifecycle.mlops.dev', 'v1alpha1', 'modelruns'], ['mlops.mlops.dev', 'v1alpha1', 'notebookvalidationjobs'], ['coordination.k8s.io', 'v1', 'leases']] as const) {
      cluster.emulator.store.deleteCollection({ group, version, resource }, { namespace: NAMESPACE });
    }
  };
  beforeEach(clean);
  const runs = (): Promise<Array<ModelRun & KubeObject>> => cluster.kube.listAll<ModelRun & KubeObject>(Resources.modelRun);
  const nvjs = (): Promise<KubeObject[]> => cluster.kube.listAll<KubeObject>(Resources.notebookValidationJob);

  describe('Tekton (tektoncd/pipeline events controller)', () => {
    test.each(MODES)('%s: pipelinerun.successful labelled mlops.dev/retrain-model creates the ModelRun and NVJ for that model', async (mode) => {
      const ce = fixture('tekton/good-successful.json') as Structured;
      const reply = await send(start.url, ce, mode);
      expect(reply.status).toBe(200);
      expect(reply.event?.type).toBe(EventTypes.trainingStarted);
      const run = (reply.event?.data as { run: string; model: string }).run;
      expect(reply.event?.data).toMatchObject({ model: 'anomaly-detector', trigger: 'pipeline' });
      const [mr, ...more] = await runs();
      expect(more).toEqual([]);
      expect(mr?.metadata.name).toBe(run);
      expect(mr?.spec).toMatchObject({
        model: 'anomaly-detector', trigger: 'pipeline', idempotencyKey: 'pipeline/9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d',
        provenance: { pipelineRun: 'retrain-anomaly-detector-run-x7k2p', pipelineRunUid: '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d' },
      });
      const [nvj, ...moreNvjs] = await nvjs();
      expect(moreNvjs).toEqual([]);
      expect(nvj?.metadata?.name).toBe(run);
      expect(nvj?.metadata?.labels).toMatchObject({ 'mlops.dev/model': 'anomaly-detector', 'mlops.dev/run': run });
      // The same event in the other mode (a redelivery) is the same run.
      const again = await send(start.url, ce, mode === 'binary' ? 'structured' : 'binary');
      expect(again.event?.id).toBe(reply.event?.id);
      expect(await nvjs()).toHaveLength(1);
    });

    test.each(MODES.flatMap((mode) => ['queued', 'started', 'running', 'failed'].map((outcome) => [mode, outcome] as const)))(
      '%s: pipelinerun.%s is ignored as "not a successful run", nothing created',
      async (mode, outcome) => {
        logs.lines.length = 0;
        const reply = await send(start.url, fixture(`tekton/good-${outcome}.json`) as Structured, mode);
        expect(reply.status).toBe(204);
        expect(await runs()).toEqual([]);
        expect(logs.lines.join('')).toContain(`ignored: not a successful run (dev.tekton.event.pipelinerun.${outcome}.v1)`);
      },
    );

    test.each(MODES)('%s: a TaskRun event is ignored as such; a successful PipelineRun without the label is ignored naming it', async (mode) => {
      logs.lines.length = 0;
      expect((await send(start.url, fixture('tekton/bad-type.json') as Structured, mode)).status).toBe(204);
      expect(logs.lines.join('')).toContain('ignored: a Tekton event not about a PipelineRun (dev.tekton.event.taskrun.successful.v1)');
      const unlabelled = structuredClone(fixture('tekton/good-successful.json')) as { data: { pipelineRun: { metadata: { labels: Record<string, string> } } } } & Structured;
      delete unlabelled.data.pipelineRun.metadata.labels['mlops.dev/retrain-model'];
      expect((await send(start.url, unlabelled, mode)).status).toBe(204);
      expect(logs.lines.join('')).toContain('ignored: PipelineRun retrain-anomaly-detector-run-x7k2p has no mlops.dev/retrain-model label');
      expect(await runs()).toEqual([]);
    });

    test.each(MODES.flatMap((mode) => [
      ['bad-no-uid.json', 'data.pipelineRun.metadata.uid: Invalid input: expected string, received undefined'],
      ['bad-conditions-type.json', 'data.pipelineRun.status.conditions: Invalid input: expected array, received string'],
      ['bad-no-pipelinerun.json', 'data.pipelineRun: Invalid input: expected object, received undefined'],
      ['bad-kind.json', 'data.pipelineRun.kind: Invalid input: expected "PipelineRun"'],
    ].map(([file, reason]) => [mode, file, reason] as const)))('%s: %s → 400 with the reason', async (mode, file, reason) => {
      const reply = await send(start.url, fixture(`tekton/${file}`) as Structured, mode);
      expect(reply.status).toBe(400);
      expect(errorOf(reply)).toBe(reason);
      expect(await runs()).toEqual([]);
    });
  });

  describe('PingSource (knative/eventing mtping)', () => {
    test.each(MODES.flatMap((mode) => [
      ['good-base64.json', 'anomaly-detector'],
      ['good-object.json', 'anomaly-detector'],
      ['good-string.json', 'predictive-analytics'],
      ['good-legacy-jsondata.json', 'anomaly-detector'],
    ].map(([file, model]) => [mode, file, model] as const)))('%s: %s starts a scheduled run of %s', async (mode, file, model) => {
      const ce = fixture(`pingsource/${file}`) as Structured;
      const reply = await send(start.url, ce, mode);
      expect(reply.status).toBe(200);
      expect(reply.event?.type).toBe(EventTypes.trainingStarted);
      expect(reply.event?.data).toMatchObject({ model, trigger: 'schedule' });
      const [mr] = await runs();
      expect(mr?.spec).toMatchObject({ model, trigger: 'schedule', provenance: { pingSource: ce.source } });
      expect(await nvjs()).toHaveLength(1);
    });

    test.each(MODES.flatMap((mode) => [
      ['bad-no-data.json', /^data: missing: the PingSource sends no data/],
      ['bad-legacy-body.json', /^data: a PingSource v1beta1 \{"body": \.\.\.\} wrapper/],
      ['bad-text-plain.json', /^data: not valid JSON \(datacontenttype "text\/plain"\)$/],
      ['bad-model-injection.json', /^data\.model: must be a DNS-1123 label/],
    ].map(([file, reason]) => [mode, file, reason] as const)))('%s: %s → 400 with the true reason', async (mode, file, reason) => {
      const reply = await send(start.url, fixture(`pingsource/${file as string}`) as Structured, mode);
      expect(reply.status).toBe(400);
      expect(errorOf(reply)).toMatch(reason as RegExp);
      expect(await runs()).toEqual([]);
    });
  });

  describe('ApiServerSource (knative/eventing apiserver adapter, Resource and Ref mode)', () => {
    // The fixture NVJ, renamed to a run start-training really created (name, uid, labels) — the rest as is.
    async function nvjEventFor(file: string, id: string): Promise<{ ce: Structured; run: string }> {
      const started = await send(start.url, fixture('pingsource/good-object.json') as Structured, 'binary');
      const run = (started.event?.data as { run: string }).run;
      const live = await cluster.kube.get<KubeObject>(Resources.notebookValidationJob, run);
      const ce = structuredClone(fixture(`apiserversource/${file}`)) as Structured & { data: KubeObject };
      ce.id = id;
      ce.name = run;
      ce.subject = `/apis/mlops.mlops.dev/v1alpha1/namespaces/${NAMESPACE}/notebookvalidationjobs/${run}`;
      ce.data.metadata = { ...ce.data.metadata, name: run, uid: live?.metadata?.uid ?? '', labels: live?.metadata?.labels ?? {}, ownerReferences: live?.metadata?.ownerReferences ?? [] };
      return { ce, run };
    }

    test.each(MODES)('%s: NVJ update Failed → training.failed with the operator message; the run fails', async (mode) => {
      const { ce, run } = await nvjEventFor('good-nvj-failed.json', `nvj-failed-${mode}`);
      const reply = await send(track.url, ce, mode);
      expect(reply.status).toBe(200);
      expect(reply.event?.type).toBe(EventTypes.trainingFailed);
      expect(reply.event?.data).toMatchObject({ model: 'anomaly-detector', run, message: "Cell 7 raised ValueError: Input contains NaN, infinity or a value too large for dtype('float64')." });
      expect((await cluster.kube.get<ModelRun & KubeObject>(Resources.modelRun, run))?.status?.phase).toBe('Failed');
    });

    test.each(MODES)('%s: NVJ update Succeeded → training.succeeded; the run moves on to the gate', async (mode) => {
      const { ce, run } = await nvjEventFor('good-nvj-update.json', `nvj-ok-${mode}`);
      const reply = await send(track.url, ce, mode);
      expect(reply.event?.type).toBe(EventTypes.trainingSucceeded);
      expect(reply.event?.data).toMatchObject({ model: 'anomaly-detector', run, artifactPath: `.runs/${run}/anomaly-detector/model.pkl` });
      expect((await cluster.kube.get<ModelRun & KubeObject>(Resources.modelRun, run))?.status?.phase).toBe('Gating');
    });

    test.each(MODES)('%s: a 100 KB NVJ failure message still produces training.failed', async (mode) => {
      const { ce, run } = await nvjEventFor('good-nvj-failed.json', `nvj-huge-${mode}`);
      (ce.data as { status: { message: string } }).status.message = `Traceback (most recent call last):\n${'x'.repeat(100 * 1024)}`;
      const reply = await send(track.url, ce, mode);
      expect(reply.status).toBe(200);
      expect(reply.event?.type).toBe(EventTypes.trainingFailed);
      expect((reply.event?.data as { run: string; message: string }).run).toBe(run);
      expect((reply.event?.data as { message: string }).message).toHaveLength(MESSAGE_MAX);
    });

    test.each(MODES.flatMap((mode) => ['good-ref-update.json', 'good-pod-delete.json', 'good-job-add.json', 'good-data-string.json'].map((f) => [mode, f] as const)))(
      '%s: %s parses and is not a training update (204, nothing changed)', async (mode, file) => {
        const reply = await send(track.url, fixture(`apiserversource/${file}`) as Structured, mode);
        expect(reply.status).toBe(204);
        expect(await runs()).toEqual([]);
      },
    );

    test.each(MODES)('%s: an ApiServerSource event type the adapter never sends → 400 naming it', async (mode) => {
      const reply = await send(track.url, fixture('apiserversource/bad-type.json') as Structured, mode);
      expect(reply.status).toBe(400);
      expect(errorOf(reply)).toBe('type: not an ApiServerSource event type ("dev.knative.apiserver.resource.patch")');
    });
  });
});

describe('Webhooks → drift-intake and git-intake over HTTP, plain JSON', () => {
  const TOKEN = 'upstream-drift-token';
  const SECRET = 'upstream-gh-secret';
  let sink: IntakeSink;
  let drift: RunningStep;
  let git: RunningStep;

  beforeAll(async () => {
    sink = await startIntakeSink();
    const silent = createLogger({ name: 'intake', level: 'silent', destination: new Writable({ write(_c, _e, done) { done(); } }) });
    const catalog = parseCatalog(`
defaults:
  notebook: { gitUrl: https://github.com/Codertocat/Hello-World.git, gitRef: master, image: img }
  features: { count: 5 }
  output: { kind: regression, width: 5 }
models:
  - name: anomaly-detector
    inferenceService: anomaly-detector
    notebook: { path: notebooks/anomaly.ipynb }
    git: { watchPaths: [README.md] }
  - name: predictive-analytics
    inferenceService: predictive-analytics
    notebook: { path: notebooks/predictive.ipynb }
`);
    const deps = (name: string) => createDeps(loadSettings({ FUNCTION: name, NAMESPACE: 'test', K_SINK: sink.url, DRIFT_INTAKE_TOKEN: TOKEN, GITHUB_WEBHOOK_SECRET: SECRET }), { kube: unusedKube(), catalog, logger: silent });
    drift = await serveStep(driftIntake, deps('drift-intake'));
    git = await serveStep(gitIntake, deps('git-intake'));
  });
  afterAll(async () => { await git.close(); await drift.close(); await sink.close(); });
  beforeEach(() => { sink.events.length = 0; });

  const postAlertmanager = async (file: string): Promise<{ status: number; body: { accepted: number } }> => {
    const res = await fetch(drift.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(fixture(`alertmanager/${file}`)) });
    return { status: res.status, body: (await res.json()) as { accepted: number } };
  };
  const firingFingerprints = (file: string): string[] =>
    (fixture(`alertmanager/${file}`) as { alerts: Array<{ status: string; labels: Record<string, string> }> }).alerts
      .filter((a) => a.status === 'firing').map((a) => labelSetFingerprint(a.labels));

  test.each([
    ['good-firing.json', ['anomaly-detector', 'predictive-analytics']],
    ['good-pre-0.19.json', ['anomaly-detector', 'predictive-analytics']],
    ['good-current.json', ['anomaly-detector']],
    ['good-resolved.json', []],
  ])('Alertmanager %s → training.requested for %j, keyed by the alert fingerprint', async (file, models) => {
    const res = await postAlertmanager(file);
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(models.length);
    expect(sink.events.map((e) => (e.data as { model: string }).model)).toEqual(models);
    expect(sink.events.map((e) => (e.data as { provenance: { alertFingerprint: string } }).provenance.alertFingerprint)).toEqual(firingFingerprints(file));
  });

  test('a pre-0.19 payload and the same alerts with fingerprints make the same events (same ids)', async () => {
    await postAlertmanager('good-pre-0.19.json');
    const old = sink.events.map((e) => e.id);
    sink.events.length = 0;
    await postAlertmanager('good-firing.json');
    expect(sink.events.map((e) => e.id)).toEqual(old);
  });

  const postGitHub = async (file: string, event: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const body = JSON.stringify(fixture(`github/${file}`));
    const res = await fetch(git.url, { method: 'POST', body, headers: {
      'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': `d-${file}`, 'x-hub-signature-256': signBody(body, SECRET),
    } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  test('octokit push with-new-branch (README.md on master) → training.requested for the model watching README.md', async () => {
    const res = await postGitHub('good-octokit-push-with-new-branch.json', 'push');
    expect(res).toMatchObject({ status: 200, body: { accepted: ['anomaly-detector'] } });
    expect(sink.events.map((e) => e.data)).toEqual([expect.objectContaining({
      model: 'anomaly-detector', trigger: 'git', gitRef: 'master',
      provenance: expect.objectContaining({ commitSha: '6113728f27ae82c7b1a177c8d03f9e96e0adf246', repository: 'Codertocat/Hello-World', pusher: 'Codertocat' }) as unknown,
    })]);
  });

  test.each(['good-octokit-push.json', 'good-octokit-push-with-no-username-committer.json', 'good-octokit-push-with-organization.json', 'good-octokit-push-with-installation.json'])(
    'octokit %s is accepted as a push and starts nothing it should not', async (file) => {
      const res = await postGitHub(file, 'push');
      expect(res.status).toBe(200);
      const push = fixture(`github/${file}`) as { deleted: boolean; ref: string };
      if (push.deleted || !push.ref.startsWith('refs/heads/')) expect(res.body.accepted).toEqual([]);
    },
  );

  test.each([
    ['good-octokit-ping.json', 'Anything added dilutes everything else.'],
    ['good-octokit-ping-with-organization.json', undefined],
    ['good-octokit-ping-with-app_id.json', undefined],
  ])('octokit %s → pong', async (file, zen) => {
    const res = await postGitHub(file, 'ping');
    expect(res.status).toBe(200);
    expect(res.body.pong).toBe(true);
    if (zen) expect(res.body.zen).toBe(zen);
    expect(sink.events).toEqual([]);
  });
});
