// notify over real HTTP, against a real HTTP Slack stand-in, a real SMTP server on loopback (smtp-server,
// AUTH PLAIN/LOGIN without TLS: the SMTP_URL carries `?starttls=false`, which makes nodemailer skip the
// STARTTLS upgrade; only for loopback tests) and the Kubernetes API emulator reached by client-node.
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { CloudEvent, HTTP } from 'cloudevents';
import smtp from 'smtp-server';
import { parseAllDocuments, parseDocument, stringify as stringifyYaml } from 'yaml';
import { startEmulator, type Emulator } from '../../dev/emulator/index.ts';
import { buildEvent, EventTypes } from '../../events/index.ts';
import { parseCatalog } from '../../runtime/catalog.ts';
import { createDeps } from '../../runtime/deps.ts';
import { serveStep, type RunningStep } from '../../runtime/faas.ts';
import { createKubePort, type KubeObject, type KubePort } from '../../runtime/kube.ts';
import { createLogger } from '../../runtime/logger.ts';
import { Resources } from '../../runtime/resources.ts';
import { loadSettings, secretValues } from '../../runtime/settings.ts';
import { step } from './index.ts';

const NS = 'default';
const RUN = 'anomaly-detector-0123456789';
const NOW = new Date('2025-01-05T02:03:04Z');
const SLACK_PATH = '/services/T0001/B0001/xoxbSECRETtoken42';
const SMTP_USER = 'notifier';
const SMTP_PASS = 'sm7p-Pa55word!';

const catalog = parseCatalog(`
defaults:
  notebook: { gitUrl: https://github.com/example/models.git, gitRef: main, image: img }
  features: { count: 45 }
  output: { kind: label, labels: [1, -1] }
models:
  - name: anomaly-detector
    inferenceService: anomaly-detector
    notebook: { path: nb/anomaly.ipynb }
    notifications:
      routes:
        - events: [model.rejected, run.failed, deployment.verified, dead-letter]
          channels: [slack, email, kubernetes-event]
          emailTo: [ops@example.com, ml-team@example.com]
        - events: [training.skipped]
          channels: [kubernetes-event]
`);

// ---------------------------------------------------------------------------------------------------
// Stand-ins

interface SlackStandIn { url: string; server: Server; received: Array<{ status: number; body: unknown; path: string }>; failNext: number }
async function startSlack(): Promise<SlackStandIn> {
  const slack: SlackStandIn = { url: '', server: createServer(), received: [], failNext: 0 };
  slack.server.on('request', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = slack.failNext > 0 ? 503 : 200;
      if (slack.failNext > 0) slack.failNext--;
      slack.received.push({ status, path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'service_unavailable');
    });
  });
  await new Promise<void>((resolve) => slack.server.listen(0, '127.0.0.1', resolve));
  const addr = slack.server.address();
  slack.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return slack;
}

interface Mail { from: string; to: string[]; raw: string; user: string | undefined }
interface SmtpStandIn { port: number; server: InstanceType<typeof smtp.SMTPServer>; mails: Mail[] }
async function startSmtp(): Promise<SmtpStandIn> {
  const mails: Mail[] = [];
  const server = new smtp.SMTPServer({
    authOptional: false,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === SMTP_USER && auth.password === SMTP_PASS) callback(null, { user: SMTP_USER });
      else callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        mails.push({ from, to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8'), user: session.user as string | undefined });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : 0, server, mails };
}

/** Header value and decoded text/plain and text/html parts of a MIME message (nodemailer's output). */
function parseMail(raw: string): { header: (name: string) => string | undefined; text: string; html: string } {
  const [head = '', ...rest] = raw.split(/\r\n\r\n/);
  const unfolded = head.replace(/\r\n[ \t]+/g, ' ');
  const header = (name: string): string | undefined => new RegExp(`^${name}: (.*)$`, 'im').exec(unfolded)?.[1];
  const boundary = /boundary="?([^";]+)"?/i.exec(header('Content-Type') ?? '')?.[1];
  const body = rest.join('\r\n\r\n');
  const parts = boundary ? body.split(`--${boundary}`).slice(1, -1) : [];
  const decoded: Record<string, string> = {};
  for (const part of parts) {
    const [ph = '', ...pb] = part.replace(/^\r\n/, '').split(/\r\n\r\n/);
    const content = pb.join('\r\n\r\n').replace(/\r\n$/, '');
    const type = /content-type: ([^;\r\n]+)/i.exec(ph)?.[1] ?? '';
    const encoding = /content-transfer-encoding: (\S+)/i.exec(ph)?.[1]?.toLowerCase();
    let text = content;
    if (encoding === 'quoted-printable') {
      text = Buffer.from(content.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
    } else if (encoding === 'base64') {
      text = Buffer.from(content, 'base64').toString('utf8');
    }
    decoded[type] = text.replace(/\r\n/g, '\n');
  }
  return { header, text: decoded['text/plain'] ?? '', html: decoded['text/html'] ?? '' };
}

async function post(url: string, event: CloudEvent<unknown>): Promise<number> {
  const message = HTTP.binary(event);
  const res = await fetch(url, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string });
  await res.text();
  return res.status;
}

function captureLogs(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  return { lines, stream: new Writable({ write(chunk: Buffer, _e, done) { lines.push(chunk.toString('utf8')); done(); } }) };
}

// ---------------------------------------------------------------------------------------------------

describe('notify over HTTP', () => {
  let emulator: Emulator;
  let dir: string;
  let kubeconfig: string;
  let kube: KubePort;
  let slack: SlackStandIn;
  let mail: SmtpStandIn;
  let notify: RunningStep;
  const logs = captureLogs();

  async function serve(env: Record<string, string>, logStream: Writable): Promise<RunningStep> {
    const settings = loadSettings({ FUNCTION: 'notify', NAMESPACE: NS, LOG_LEVEL: 'debug', KUBECONFIG: kubeconfig, ...env });
    const logger = createLogger({ name: 'notify', level: 'debug', secrets: secretValues(settings), destination: logStream });
    return serveStep(step, createDeps(settings, { logger, catalog, clock: { now: () => NOW } }));
  }
  const secretsEnv = (): Record<string, string> => ({
    SLACK_WEBHOOK_URL: `${slack.url}${SLACK_PATH}`,
    SMTP_URL: `smtp://${SMTP_USER}:${encodeURIComponent(SMTP_PASS)}@127.0.0.1:${mail.port}?starttls=false`,
    SMTP_FROM: 'model-lifecycle@example.com',
  });
  const events = (type: string): Promise<KubeObject[]> => kube.listAll<KubeObject>(Resources.event, { labelSelector: `mlops.dev/notification-type=${type}` });

  beforeAll(async () => {
    emulator = await startEmulator();
    const crd = parseAllDocuments(await readFile(new URL('../../config/crds/modelrun.yaml', import.meta.url), 'utf8')).map((d) => d.toJS() as object);
    await emulator.applyManifests(crd);
    await emulator.applyManifests([{
      apiVersion: 'lifecycle.mlops.dev/v1alpha1',
      kind: 'ModelRun',
      metadata: { name: RUN, namespace: NS },
      spec: { model: 'anomaly-detector', trigger: 'drift', idempotencyKey: 'drift/abc', profile: 'cpu', provenance: { alertName: 'ModelDriftDetected', alertFingerprint: 'abc123' } },
      status: { phase: 'Rejected', startedAt: '2025-01-05T01:00:00Z' },
    }]);
    dir = await mkdtemp(join(tmpdir(), 'notify-test-'));
    kubeconfig = join(dir, 'kubeconfig');
    // client-node 2 refuses plain http unless the cluster says insecure-skip-tls-verify.
    const config = parseDocument(emulator.kubeconfigYaml({ namespace: NS })).toJS() as { clusters: Array<{ cluster: Record<string, unknown> }> };
    for (const c of config.clusters) c.cluster['insecure-skip-tls-verify'] = true;
    await writeFile(kubeconfig, stringifyYaml(config), { mode: 0o600 });
    kube = createKubePort({ kubeconfigPath: kubeconfig, namespace: NS });
    slack = await startSlack();
    mail = await startSmtp();
    notify = await serve(secretsEnv(), logs.stream);
  });
  afterAll(async () => {
    await notify.close();
    await new Promise<void>((resolve) => slack.server.close(() => resolve()));
    await new Promise<void>((resolve) => mail.server.close(() => resolve()));
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    slack.received.length = 0;
    slack.failNext = 0;
    mail.mails.length = 0;
  });

  test('a rejection delivered three times while Slack fails twice: one Slack message, one email, one Event', async () => {
    const event = buildEvent(EventTypes.modelRejected, {
      step: 'gate-health',
      time: '2025-01-05T02:03:00Z',
      data: {
        model: 'anomaly-detector', run: RUN, message: 'the health gate refused the model',
        checks: [{ name: 'file-exists', ok: true }, { name: 'prediction-width', ok: false, message: 'expected 1 output per row, got 3 <bad>' }],
        failed: ['prediction-width'],
      },
    });
    slack.failNext = 2;
    expect(await post(notify.url, event)).toBe(503);
    // Email and Event went out and were recorded before the 503: only Slack is owed.
    const afterFirst = await kube.get<KubeObject>(Resources.modelRun, RUN);
    expect(afterFirst?.metadata?.annotations?.['mlops.dev/notified-model-rejected']).toBe('email,event');
    expect(await post(notify.url, event)).toBe(503);
    expect(await post(notify.url, event)).toBe(204);
    expect(await post(notify.url, event)).toBe(204);

    expect(slack.received.map((r) => [r.status, r.path])).toEqual([[503, SLACK_PATH], [503, SLACK_PATH], [200, SLACK_PATH]]);
    const text = [
      `Model rejected by the health gate: anomaly-detector (${RUN})`,
      'Model: anomaly-detector',
      `Run: ${RUN}`,
      'Trigger: drift (alertName=ModelDriftDetected, alertFingerprint=abc123)',
      'Failed checks: prediction-width',
      'Duration: 1h 3m 4s',
      'the health gate refused the model',
      '- prediction-width: expected 1 output per row, got 3 <bad>',
    ].join('\n');
    expect(slack.received[2]?.body).toEqual({
      text,
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: 'Model rejected by the health gate: anomaly-detector', emoji: false } },
        {
          type: 'section',
          fields: [
            { type: 'mrkdwn', text: '*Model*\nanomaly-detector' },
            { type: 'mrkdwn', text: `*Run*\n${RUN}` },
            { type: 'mrkdwn', text: '*Trigger*\ndrift (alertName=ModelDriftDetected, alertFingerprint=abc123)' },
            { type: 'mrkdwn', text: '*Failed checks*\nprediction-width' },
            { type: 'mrkdwn', text: '*Duration*\n1h 3m 4s' },
          ],
        },
        { type: 'section', text: { type: 'mrkdwn', text: '```the health gate refused the model\n- prediction-width: expected 1 output per row, got 3 &lt;bad&gt;```' } },
        { type: 'context', elements: [{ type: 'mrkdwn', text: `CloudEvent ${RUN}.model.rejected from /model-lifecycle/gate-health` }] },
      ],
    });
    // The three failed/succeeded attempts all carried the same payload.
    expect(slack.received[0]?.body).toEqual(slack.received[2]?.body);

    expect(mail.mails).toHaveLength(1);
    const sent = mail.mails[0]!;
    expect(sent.user).toBe(SMTP_USER);
    expect(sent.from).toBe('model-lifecycle@example.com');
    expect(sent.to).toEqual(['ml-team@example.com', 'ops@example.com']);
    const parsed = parseMail(sent.raw);
    expect(parsed.header('Subject')).toBe(`[model-lifecycle] anomaly-detector model.rejected (${RUN})`);
    expect(parsed.header('From')).toBe('model-lifecycle@example.com');
    expect(parsed.header('To')).toBe('ml-team@example.com, ops@example.com');
    expect(parsed.text).toBe(`${text}\n\nCloudEvent ${RUN}.model.rejected from /model-lifecycle/gate-health\n`);
    expect(parsed.html).toContain('<tr><th align="left">Failed checks</th><td>prediction-width</td></tr>');
    expect(parsed.html).toContain('<pre>the health gate refused the model\n- prediction-width: expected 1 output per row, got 3 &lt;bad&gt;</pre>');
    expect(parsed.html).not.toContain('<bad>');

    const recorded = await events('model-rejected');
    expect(recorded).toHaveLength(1);
    const run = await kube.get<KubeObject>(Resources.modelRun, RUN);
    expect(recorded[0]).toMatchObject({
      metadata: { name: `${RUN}.model-rejected`, namespace: NS, labels: { 'mlops.dev/notification-type': 'model-rejected', 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': 'anomaly-detector', 'mlops.dev/run': RUN } },
      involvedObject: { apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', name: RUN, namespace: NS, uid: run?.metadata?.uid },
      reason: 'ModelRejected',
      type: 'Warning',
      message: 'Model rejected by the health gate; Failed checks: prediction-width; the health gate refused the model - prediction-width: expected 1 output per row, got 3 <bad>',
      count: 1,
    });
    expect(run?.metadata?.annotations?.['mlops.dev/notified-model-rejected']).toBe('slack,email,event');
  });

  test('three deliveries of one notice arriving at once send it once (the first claims it; the others retry and find it sent)', async () => {
    const RUN2 = `${RUN}-b`;
    await emulator.applyManifests([{
      apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', metadata: { name: RUN2, namespace: NS },
      spec: { model: 'anomaly-detector', trigger: 'manual', idempotencyKey: 'manual/b', profile: 'cpu' },
      status: { phase: 'Succeeded', startedAt: '2025-01-05T01:00:00Z' },
    }]);
    const event = buildEvent(EventTypes.deploymentVerified, {
      step: 'verify-endpoint', time: '2025-01-05T02:04:00Z',
      data: { model: 'anomaly-detector', run: RUN2, release: RUN2, verifiedAt: '2025-01-05T02:04:00Z', pods: ['p-1'], matched: 8 },
    });
    const first = await Promise.all([post(notify.url, event), post(notify.url, event), post(notify.url, event)]);
    expect(first.filter((s) => s === 204)).toHaveLength(1);
    expect(first.filter((s) => s === 503)).toHaveLength(2);
    // The broker's retries of the two losers find the notice recorded.
    expect(await post(notify.url, event)).toBe(204);
    expect(await post(notify.url, event)).toBe(204);
    expect(slack.received.filter((r) => r.status === 200)).toHaveLength(1);
    expect(mail.mails).toHaveLength(1);
    expect((await events('deployment-verified')).filter((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === RUN2)).toHaveLength(1);
    const run = await kube.get<KubeObject>(Resources.modelRun, RUN2);
    expect(run?.metadata?.annotations?.['mlops.dev/notifying-deployment-verified']).toBeUndefined();
    expect(run?.metadata?.annotations?.['mlops.dev/notified-deployment-verified']).toBe('slack,email,event');
  });

  test('a dead letter without a ModelRun: the Event is the record, a redelivery sends nothing', async () => {
    const dead = new CloudEvent<unknown>({
      specversion: '1.0', id: 'req-77', source: '/apis/v1/namespaces/ml/pingsources/x', type: 'dev.knative.sources.ping',
      knativeerrorcode: '500', knativeerrordest: 'http://start-training.ml.svc.cluster.local/hook?token=zzz',
      knativeerrordata: Buffer.from('{"error":"boom"}').toString('base64'), data: { model: 'nobody' },
    });
    expect(await post(notify.url, dead)).toBe(204);
    expect(await post(notify.url, dead)).toBe(204);
    // No model: the default route (Slack and Event for failures), no email.
    expect(slack.received).toHaveLength(1);
    expect((slack.received[0]?.body as { text: string }).text).toBe([
      'Event dead-lettered: unknown', 'Model: unknown', 'Run: none', 'Event type: dev.knative.sources.ping', 'Event id: req-77',
      'Source: /apis/v1/namespaces/ml/pingsources/x', 'Destination: start-training.ml.svc.cluster.local', 'Error code: 500', '{"error":"boom"}',
    ].join('\n'));
    expect(mail.mails).toHaveLength(0);
    const recorded = await events('dead-letter');
    expect(recorded).toHaveLength(1);
    expect(recorded[0]?.metadata?.name).toMatch(/^model-lifecycle\.dead-letter-[0-9a-f]{8}$/);
    expect(recorded[0]?.metadata?.annotations?.['mlops.dev/notified-channels']).toBe('slack,event');
    expect(recorded[0]).toMatchObject({ reason: 'DeadLetter', type: 'Warning' });
  });

  test('dead letters of a run are tallied on its ModelRun for kube-state-metrics; a redelivery does not count twice', async () => {
    const deadLetterOf = (id: string): CloudEvent<unknown> => new CloudEvent<unknown>({
      specversion: '1.0', id, source: '/model-lifecycle/gate-health', type: EventTypes.modelApproved, model: 'anomaly-detector', run: RUN,
      knativeerrorcode: '422', knativeerrordest: 'http://restart-predictor.ml.svc.cluster.local/', data: {},
    });
    expect(await post(notify.url, deadLetterOf('dl-a'))).toBe(204);
    expect(await post(notify.url, deadLetterOf('dl-a'))).toBe(204);
    let annotations = (await kube.get<KubeObject>(Resources.modelRun, RUN))?.metadata?.annotations ?? {};
    expect([annotations['mlops.dev/dead-letters'], annotations['mlops.dev/dead-lettered-at']]).toEqual(['1', NOW.toISOString()]);
    expect(await post(notify.url, deadLetterOf('dl-b'))).toBe(204);
    annotations = (await kube.get<KubeObject>(Resources.modelRun, RUN))?.metadata?.annotations ?? {};
    expect(annotations['mlops.dev/dead-letters']).toBe('2');
  });

  test('a dead letter of an event the runtime refused as malformed is still reported (runtime/faas.ts)', async () => {
    // Data labelled JSON that is not: a function's faas-js-runtime refused it before the step ran, so the
    // Broker dead-lettered it here; notify's own runtime must not refuse it again.
    const res = await fetch(notify.url, { method: 'POST', body: '{not json', headers: {
      'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': 'bad-json-1', 'ce-source': '/producer', 'ce-type': 'dev.mlops.training.requested.v1',
      'ce-knativeerrorcode': '400', 'ce-knativeerrordest': 'http://start-training.ml.svc.cluster.local',
    } });
    expect(res.status).toBe(204);
    const text = slack.received.map((r) => (r.body as { text: string }).text).find((t) => t.includes('Event id: bad-json-1'));
    expect(text).toMatch(/^Event dead-lettered: unknown\n[\s\S]*Error code: 400/);
  });

  test('a skip without a run: Normal Event only, once', async () => {
    const skip = buildEvent(EventTypes.trainingSkipped, { step: 'start-training', id: 'skip-1', data: { model: 'anomaly-detector', reason: 'already-running', message: 'run in progress', holder: RUN } });
    expect(await post(notify.url, skip)).toBe(204);
    expect(await post(notify.url, skip)).toBe(204);
    const recorded = await events('training-skipped');
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ reason: 'TrainingSkipped', type: 'Normal', message: `Training skipped; Reason: already-running; Held by: ${RUN}; run in progress` });
    expect(slack.received).toHaveLength(0);
    expect(mail.mails).toHaveLength(0);
  });

  test('events that are not routed or not notifications: 204 and nothing sent; bad data: 400', async () => {
    const failed = buildEvent(EventTypes.trainingFailed, { step: 'track-training', data: { model: 'anomaly-detector', run: RUN, profile: 'cpu', phase: 'Failed', message: 'x' } });
    const started = buildEvent(EventTypes.trainingStarted, { step: 'start-training', data: { model: 'anomaly-detector', run: RUN, trigger: 'drift', profile: 'cpu', notebookValidationJob: RUN, startedAt: '2025-01-05T01:00:00Z', deadline: '2025-01-05T05:00:00Z' } });
    expect(await post(notify.url, failed)).toBe(204);
    expect(await post(notify.url, started)).toBe(204);
    const bad = new CloudEvent<unknown>({ specversion: '1.0', id: 'b-1', source: '/x', type: EventTypes.runFailed, data: { model: 'anomaly-detector' } });
    expect(await post(notify.url, bad)).toBe(400);
    expect(slack.received).toHaveLength(0);
    expect(mail.mails).toHaveLength(0);
    expect(await events('training-failed')).toHaveLength(0);
  });

  test('channels without secrets are skipped; wrong SMTP credentials fail the email alone, permanently', async () => {
    const quietLogs = captureLogs();
    // No Slack URL and no SMTP_FROM: neither channel is configured, only the Event goes out.
    const unconfigured = await serve({ SMTP_URL: secretsEnv().SMTP_URL ?? '' }, quietLogs.stream);
    const wrongPass = await serve({ ...secretsEnv(), SMTP_URL: `smtp://${SMTP_USER}:not-the-${encodeURIComponent(SMTP_PASS)}@127.0.0.1:${mail.port}?starttls=false` }, logs.stream);
    try {
      const verified = buildEvent(EventTypes.deploymentVerified, { step: 'verify-endpoint', data: { model: 'anomaly-detector', run: RUN, release: RUN, verifiedAt: '2025-01-05T02:00:00Z', pods: ['p-1'], matched: 8 } });
      expect(await post(unconfigured.url, verified)).toBe(204);
      expect(await post(unconfigured.url, verified)).toBe(204);
      const recorded = (await events('deployment-verified')).filter((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === RUN);
      expect(recorded).toHaveLength(1);
      expect(recorded[0]).toMatchObject({ reason: 'DeploymentVerified', type: 'Normal' });
      const skippedLines = quietLogs.lines.filter((l) => l.includes('channel skipped'));
      expect(skippedLines.map((l) => (JSON.parse(l) as { channel: string }).channel).sort()).toEqual(['email', 'slack']);

      const runFailed = buildEvent(EventTypes.runFailed, { step: 'watchdog', data: { model: 'anomaly-detector', run: RUN, step: 'training', reason: 'deadline', message: 'training overran its deadline' } });
      expect(await post(wrongPass.url, runFailed)).toBe(204);
      expect(slack.received.filter((r) => r.status === 200)).toHaveLength(1);
      expect(mail.mails).toHaveLength(0);
      const failure = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'notification failed permanently; fix the channel configuration');
      expect(failure).toMatchObject({ ceId: runFailed.id, channel: 'email', level: 'error' });
      const run = await kube.get<KubeObject>(Resources.modelRun, RUN);
      expect(run?.metadata?.annotations?.['mlops.dev/notified-run-failed']).toBe('slack,event');
    } finally {
      await unconfigured.close();
      await wrongPass.close();
    }
  });

  test('an unreachable Slack is retried and logged with the event id, never with the webhook URL', async () => {
    const dead = await startSlack();
    await new Promise<void>((resolve) => dead.server.close(() => resolve()));
    const unreachable = await serve({ ...secretsEnv(), SLACK_WEBHOOK_URL: `${dead.url}${SLACK_PATH}` }, logs.stream);
    try {
      const rolled = buildEvent(EventTypes.deploymentFailed, { step: 'verify-endpoint', data: { model: 'anomaly-detector', run: RUN, release: RUN, reason: 'mismatch', message: 'outputs differ' } });
      // deployment.failed is not routed for this model: nothing happens.
      expect(await post(unreachable.url, rolled)).toBe(204);
      const dl = new CloudEvent<unknown>({ specversion: '1.0', id: 'dl-2', source: '/s', type: 't', model: 'anomaly-detector', run: RUN, knativeerrorcode: '503' });
      expect(await post(unreachable.url, dl)).toBe(503);
      const failure = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'notification failed; will be retried' && l.ceId === 'dl-2');
      expect(failure).toMatchObject({ channel: 'slack', level: 'warn' });
      expect(String(failure?.err)).toMatch(/^slack request failed/);
    } finally {
      await unreachable.close();
    }
  });

  test('no log line contains the webhook URL, its token or the SMTP password', () => {
    expect(logs.lines.length).toBeGreaterThan(10);
    for (const line of logs.lines) {
      expect(line).not.toContain(SLACK_PATH);
      expect(line).not.toContain('xoxbSECRETtoken42');
      expect(line).not.toContain(SMTP_PASS);
      expect(line).not.toContain(encodeURIComponent(SMTP_PASS));
    }
  });
});
