// Secrets never reach logs: a full failing run with every channel configured (Slack stand-in, real SMTP server on
// loopback), webhooks with good and bad credentials, every function logging at debug through its production
// logger; no line may contain a secret.
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import { CloudEvent } from 'cloudevents';
import { startLocal, DEV_NAMESPACE } from '../dev/local.ts';
import { EventTypes } from '../events/index.ts';
import { signBody } from '../functions/git-intake/auth.ts';
import { loadCatalog } from '../runtime/catalog.ts';
import type { ModelRun } from '../runtime/resources.ts';

const SLACK_PATH = '/services/T0SECRET/B0SECRET/xoxSecretWebhookPath42';
const SMTP_PASSWORD = 'Smtp-Passw0rd-Very-Secret';
const DRIFT_TOKEN = 'drift-bearer-token-9f8e7d6c';
const GITHUB_SECRET = 'github-hmac-secret-1a2b3c4d';

describe('secrets never reach the logs', () => {
  let slack: Server;
  let smtp: SMTPServer;
  const slackBodies: string[] = [];
  const mails: string[] = [];

  beforeAll(async () => {
    slack = createServer((req, res) => { let b = ''; req.on('data', (c: Buffer) => { b += c.toString(); }); req.on('end', () => { slackBodies.push(b); res.writeHead(200).end('ok'); }); });
    await new Promise<void>((r) => slack.listen(0, '127.0.0.1', r));
    smtp = new SMTPServer({
      authOptional: false, disabledCommands: ['STARTTLS'], logger: false,
      onAuth: (auth, _s, cb) => { cb(auth.password === SMTP_PASSWORD ? null : new Error('bad auth'), { user: auth.username }); },
      onData: (stream, _s, cb) => { let b = ''; stream.on('data', (c: Buffer) => { b += c.toString(); }); stream.on('end', () => { mails.push(b); cb(); }); },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await new Promise<void>((r) => slack.close(() => r()));
    await new Promise<void>((r) => smtp.close(() => r()));
  });

  test('a failing run, notifications and webhooks leave no secret in any log line', async () => {
    const lines: string[] = [];
    const destination = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(...chunk.toString().split('\n').filter(Boolean)); cb(); } });
    const slackUrl = `http://127.0.0.1:${(slack.address() as { port: number }).port}${SLACK_PATH}`;
    const smtpUrl = `smtp://mlops:${encodeURIComponent(SMTP_PASSWORD)}@127.0.0.1:${(smtp.server.address() as { port: number }).port}?starttls=false`;
    const catalog = loadCatalog('config/models.yaml');
    const withEmail = { ...catalog, models: catalog.models.map((m) => ({ ...m, notifications: { routes: [{ events: ['training.failed' as const, 'run.failed' as const, 'dead-letter' as const], channels: ['slack' as const, 'email' as const, 'kubernetes-event' as const], emailTo: ['ml-team@example.com'] }] } })) };
    const local = await startLocal({
      catalog: withEmail, scenario: 'training-fail', simulatorMode: 'test', logDestination: destination,
      env: { SLACK_WEBHOOK_URL: slackUrl, SMTP_URL: smtpUrl, SMTP_FROM: 'mlops@example.com', DRIFT_INTAKE_TOKEN: DRIFT_TOKEN, GITHUB_WEBHOOK_SECRET: GITHUB_SECRET, LOG_LEVEL: 'debug' },
    });
    try {
      await local.broker.send(new CloudEvent({ type: EventTypes.trainingRequested, source: '/secrets', id: 's-1', datacontenttype: 'application/json', data: { model: 'anomaly-detector', trigger: 'manual' } }));
      // Webhooks with right and wrong credentials.
      const alert = JSON.stringify({ version: '4', groupKey: 'g', status: 'firing', receiver: 'mlops', groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: 'http://am',
        alerts: [{ status: 'firing', labels: { alertname: 'ModelDriftDetected', model: 'predictive-analytics' }, annotations: {}, startsAt: '2026-11-22T01:00:00Z', endsAt: '0001-01-01T00:00:00Z', generatorURL: 'http://prom', fingerprint: 'abc123' }] });
      const drift = local.steps['drift-intake'].url;
      expect((await fetch(drift, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${DRIFT_TOKEN}` }, body: alert })).status).toBe(200);
      expect((await fetch(drift, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${DRIFT_TOKEN}x` }, body: alert })).status).toBe(401);
      const push = JSON.stringify({ ref: 'refs/heads/main', before: '0'.repeat(40), after: 'a'.repeat(40), repository: { full_name: 'o/r', clone_url: 'https://github.com/o/r.git', html_url: 'https://github.com/o/r' }, pusher: { name: 'dev', email: 'dev@example.com' }, commits: [] });
      const git = local.steps['git-intake'].url;
      expect((await fetch(git, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': 'd-1', 'x-hub-signature-256': signBody(push, GITHUB_SECRET) }, body: push })).status).toBe(200);
      expect((await fetch(git, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': 'd-2', 'x-hub-signature-256': signBody(push, 'wrong') }, body: push })).status).toBe(401);

      const failed = (): boolean => (local.emulator.store.list({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun' }, { namespace: DEV_NAMESPACE }) as unknown as ModelRun[])
        .some((r) => r.spec.model === 'anomaly-detector' && r.status?.phase === 'Failed');
      for (let i = 0; i < 300 && !(failed() && mails.length > 0 && slackBodies.length > 0); i++) await new Promise((r) => setTimeout(r, 100));
      await local.broker.idle(30_000);
    } finally {
      await local.close();
    }
    // The notifications really went out through the configured channels...
    expect(slackBodies.some((b) => b.includes('anomaly-detector'))).toBe(true);
    expect(mails.some((m) => m.includes('anomaly-detector'))).toBe(true);
    // ...the logs are structured and say what happened...
    expect(lines.length).toBeGreaterThan(20);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.some((l) => l.ceType === EventTypes.trainingFailed && l.model === 'anomaly-detector' && typeof l.run === 'string' && typeof l.ceId === 'string')).toBe(true);
    // ...and not one line holds a secret or a recognisable part of one.
    for (const secret of [SLACK_PATH, 'xoxSecretWebhookPath42', SMTP_PASSWORD, encodeURIComponent(SMTP_PASSWORD), DRIFT_TOKEN, GITHUB_SECRET]) {
      expect({ secret, lines: lines.filter((l) => l.includes(secret)) }).toEqual({ secret, lines: [] });
    }
  });
});
