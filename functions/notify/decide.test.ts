import { describe, expect, test } from '@jest/globals';
import { buildEvent, EventTypes } from '../../events/index.ts';
import { findModel, loadCatalog, type CatalogModel, type NotificationRoute } from '../../runtime/catalog.ts';
import { evaluateGate } from '../gate-health/report.ts';
import {
  DeadLetterAnnotations,
  DefaultRoutes,
  deadLetterTally,
  decide,
  eventNameOf,
  formatChannels,
  formatDuration,
  notifiedAnnotationOf,
  parseChannels,
  stripUrls,
  toNotice,
  type Notice,
  type NotifyAction,
  type NotifyState,
} from './decide.ts';

const RUN = 'anomaly-detector-0123456789';
const NOW = new Date('2025-01-05T02:03:04Z');
const TIME = '2025-01-05T02:00:00Z';
const ALL: NotificationRoute[] = [{
  events: ['training.failed', 'run.failed', 'model.rejected', 'deployment.failed', 'deployment.rolledback', 'deployment.verified', 'dead-letter'],
  channels: ['slack', 'email', 'kubernetes-event'],
  emailTo: ['ops@example.com'],
}];
const withRun: NotifyState = {
  namespace: 'ml',
  run: { uid: 'uid-1', trigger: 'drift', provenance: { alertName: 'ModelDriftDetected', alertFingerprint: 'abc' }, startedAt: '2025-01-05T01:00:00Z' },
  delivered: [],
  configured: { slack: true, email: true },
};
const noRun: NotifyState = { ...withRun, run: undefined };

function notice(ce: unknown): Notice {
  const parsed = toNotice(ce as never);
  if (parsed.kind !== 'notice') throw new Error(`expected a notice, got ${parsed.kind}: ${parsed.reason}`);
  return parsed.notice;
}

const rejected = notice(buildEvent(EventTypes.modelRejected, {
  step: 'gate-health',
  time: TIME,
  data: { model: 'anomaly-detector', run: RUN, checks: [{ name: 'exists', ok: true }, { name: 'width', ok: false, message: 'got 3 <expected 45>' }], failed: ['width'], message: 'gate failed' },
}));
const verified = notice(buildEvent(EventTypes.deploymentVerified, {
  step: 'verify-endpoint',
  time: TIME,
  data: { model: 'anomaly-detector', run: RUN, release: RUN, verifiedAt: TIME, pods: ['p-1', 'p-2'], matched: 8 },
}));
const skipped = notice(buildEvent(EventTypes.trainingSkipped, {
  step: 'start-training',
  id: 'skip-1',
  time: TIME,
  data: { model: 'anomaly-detector', reason: 'already-running', message: 'a run is in progress', holder: RUN },
}));
const deadLetter = notice({
  specversion: '1.0', type: EventTypes.modelApproved, id: 'evt-9', source: '/model-lifecycle/gate-health',
  model: 'anomaly-detector', run: RUN,
  knativeerrorcode: '500',
  knativeerrordest: 'http://restart-predictor.ml.svc.cluster.local/?token=hunter22',
  knativeerrordata: Buffer.from('boom at https://hooks.example/secret-path').toString('base64'),
  data: {},
});

const rejectedSlack: NotifyAction = {
  kind: 'slack',
  message: {
    text: [
      `Model rejected by the health gate: anomaly-detector (${RUN})`,
      'Model: anomaly-detector',
      `Run: ${RUN}`,
      'Trigger: drift (alertName=ModelDriftDetected, alertFingerprint=abc)',
      'Failed checks: width',
      'Duration: 1h 3m 4s',
      'gate failed',
      '- width: got 3 <expected 45>',
    ].join('\n'),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: 'Model rejected by the health gate: anomaly-detector', emoji: false } },
      {
        type: 'section',
        fields: [
          { type: 'mrkdwn', text: '*Model*\nanomaly-detector' },
          { type: 'mrkdwn', text: `*Run*\n${RUN}` },
          { type: 'mrkdwn', text: '*Trigger*\ndrift (alertName=ModelDriftDetected, alertFingerprint=abc)' },
          { type: 'mrkdwn', text: '*Failed checks*\nwidth' },
          { type: 'mrkdwn', text: '*Duration*\n1h 3m 4s' },
        ],
      },
      { type: 'section', text: { type: 'mrkdwn', text: '```gate failed\n- width: got 3 &lt;expected 45&gt;```' } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `CloudEvent ${RUN}.model.rejected from /model-lifecycle/gate-health` }] },
    ],
  },
};
const rejectedEmail: NotifyAction = {
  kind: 'email',
  to: ['ops@example.com'],
  subject: `[model-lifecycle] anomaly-detector model.rejected (${RUN})`,
  text: [
    `Model rejected by the health gate: anomaly-detector (${RUN})`,
    'Model: anomaly-detector',
    `Run: ${RUN}`,
    'Trigger: drift (alertName=ModelDriftDetected, alertFingerprint=abc)',
    'Failed checks: width',
    'Duration: 1h 3m 4s',
    'gate failed',
    '- width: got 3 <expected 45>',
    '',
    `CloudEvent ${RUN}.model.rejected from /model-lifecycle/gate-health`,
    '',
  ].join('\n'),
  html: [
    '<h2>Model rejected by the health gate: anomaly-detector</h2>',
    '<table>'
      + '<tr><th align="left">Model</th><td>anomaly-detector</td></tr>'
      + `<tr><th align="left">Run</th><td>${RUN}</td></tr>`
      + '<tr><th align="left">Trigger</th><td>drift (alertName=ModelDriftDetected, alertFingerprint=abc)</td></tr>'
      + '<tr><th align="left">Failed checks</th><td>width</td></tr>'
      + '<tr><th align="left">Duration</th><td>1h 3m 4s</td></tr>'
      + '</table>',
    '<pre>gate failed\n- width: got 3 &lt;expected 45&gt;</pre>',
    `<p><small>CloudEvent ${RUN}.model.rejected from /model-lifecycle/gate-health</small></p>`,
  ].join('\n'),
};
const k8sBase = {
  source: { component: 'model-lifecycle-notify' },
  reportingComponent: 'model-lifecycle/notify',
  reportingInstance: 'notify',
  firstTimestamp: '2025-01-05T02:03:04.000Z',
  lastTimestamp: '2025-01-05T02:03:04.000Z',
  count: 1,
};
const runObject = { apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', name: RUN, namespace: 'ml', uid: 'uid-1' };
const rejectedEvent: NotifyAction = {
  kind: 'k8s-event',
  event: {
    metadata: {
      name: `${RUN}.model-rejected`,
      namespace: 'ml',
      labels: { 'mlops.dev/notification-type': 'model-rejected', 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': 'anomaly-detector', 'mlops.dev/run': RUN },
    },
    involvedObject: runObject,
    reason: 'ModelRejected',
    message: 'Model rejected by the health gate; Failed checks: width; gate failed - width: got 3 <expected 45>',
    type: 'Warning',
    ...k8sBase,
  },
};

describe('decide', () => {
  const rows: Array<{ name: string; notice: Notice; routes: readonly NotificationRoute[]; state: NotifyState; actions: NotifyAction[]; unconfigured?: string[] }> = [
    { name: 'rejection, every channel, nothing sent yet', notice: rejected, routes: ALL, state: withRun, actions: [rejectedSlack, rejectedEmail, rejectedEvent] },
    { name: 'redelivery after Slack was recorded sends only the rest', notice: rejected, routes: ALL, state: { ...withRun, delivered: ['slack'] }, actions: [rejectedEmail, rejectedEvent] },
    { name: 'redelivery after everything was recorded sends nothing', notice: rejected, routes: ALL, state: { ...withRun, delivered: ['slack', 'email', 'event'] }, actions: [] },
    { name: 'Slack secret unset: skipped', notice: rejected, routes: ALL, state: { ...withRun, configured: { slack: false, email: true } }, actions: [rejectedEmail, rejectedEvent], unconfigured: ['slack'] },
    {
      name: 'email routed without recipients: skipped',
      notice: rejected,
      routes: [{ ...ALL[0]!, emailTo: [] }],
      state: withRun,
      actions: [rejectedSlack, rejectedEvent],
      unconfigured: ['email'],
    },
    {
      name: 'recipients of every matching route, deduplicated and sorted; other routes ignored',
      notice: rejected,
      routes: [
        { events: ['model.rejected'], channels: ['email'], emailTo: ['z@example.com', 'ops@example.com'] },
        { events: ['model.rejected', 'run.failed'], channels: ['email'], emailTo: ['ops@example.com', 'a@example.com'] },
        { events: ['deployment.verified'], channels: ['email', 'slack'], emailTo: ['nope@example.com'] },
      ],
      state: withRun,
      actions: [{ ...rejectedEmail, to: ['a@example.com', 'ops@example.com', 'z@example.com'] }],
    },
    { name: 'default routes (unknown model): Slack and Event for failures', notice: rejected, routes: DefaultRoutes, state: withRun, actions: [rejectedSlack, rejectedEvent] },
    { name: 'skip not named by any route: nothing', notice: skipped, routes: ALL, state: noRun, actions: [] },
    {
      name: 'success is a Normal event with its own reason',
      notice: verified,
      routes: [{ events: ['deployment.verified'], channels: ['kubernetes-event'], emailTo: [] }],
      state: withRun,
      actions: [{
        kind: 'k8s-event',
        event: {
          metadata: {
            name: `${RUN}.deployment-verified`,
            namespace: 'ml',
            labels: { 'mlops.dev/notification-type': 'deployment-verified', 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': 'anomaly-detector', 'mlops.dev/run': RUN },
          },
          involvedObject: runObject,
          reason: 'DeploymentVerified',
          message: `Deployment verified; Release: ${RUN}; Pods: p-1, p-2; Probe rows matched: 8`,
          type: 'Normal',
          ...k8sBase,
        },
      }],
    },
    {
      name: 'skip without a run, routed to Slack only: the Event is still written as the delivery record',
      notice: skipped,
      routes: [{ events: ['training.skipped'], channels: ['slack'], emailTo: [] }],
      state: noRun,
      actions: [
        {
          kind: 'slack',
          message: {
            text: 'Training skipped: anomaly-detector\nModel: anomaly-detector\nRun: none\nReason: already-running\nHeld by: anomaly-detector-0123456789\na run is in progress',
            blocks: [
              { type: 'header', text: { type: 'plain_text', text: 'Training skipped: anomaly-detector', emoji: false } },
              { type: 'section', fields: [
                { type: 'mrkdwn', text: '*Model*\nanomaly-detector' },
                { type: 'mrkdwn', text: '*Run*\nnone' },
                { type: 'mrkdwn', text: '*Reason*\nalready-running' },
                { type: 'mrkdwn', text: `*Held by*\n${RUN}` },
              ] },
              { type: 'section', text: { type: 'mrkdwn', text: '```a run is in progress```' } },
              { type: 'context', elements: [{ type: 'mrkdwn', text: 'CloudEvent skip-1 from /model-lifecycle/start-training' }] },
            ],
          },
        },
        {
          kind: 'k8s-event',
          event: {
            metadata: {
              name: `anomaly-detector.training-skipped-${skipped.recordKey.slice(-8)}`,
              namespace: 'ml',
              labels: { 'mlops.dev/notification-type': 'training-skipped', 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': 'anomaly-detector' },
            },
            involvedObject: { apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', name: 'anomaly-detector', namespace: 'ml' },
            reason: 'TrainingSkipped',
            message: `Training skipped; Reason: already-running; Held by: ${RUN}; a run is in progress`,
            type: 'Normal',
            ...k8sBase,
          },
        },
      ],
    },
    {
      name: 'dead letter of any type: Warning DeadLetter, destination host only, URLs stripped from the error data',
      notice: deadLetter,
      routes: [{ events: ['dead-letter'], channels: ['kubernetes-event'], emailTo: [] }],
      state: withRun,
      actions: [{
        kind: 'k8s-event',
        event: {
          metadata: {
            name: `${RUN}.${deadLetter.recordKey}`,
            namespace: 'ml',
            labels: { 'mlops.dev/notification-type': 'dead-letter', 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': 'anomaly-detector', 'mlops.dev/run': RUN },
          },
          involvedObject: runObject,
          reason: 'DeadLetter',
          message: 'Event dead-lettered; Event type: dev.mlops.model.approved.v1; Event id: evt-9; Source: /model-lifecycle/gate-health; '
            + 'Destination: restart-predictor.ml.svc.cluster.local; Error code: 500; boom at [url]',
          type: 'Warning',
          ...k8sBase,
        },
      }],
    },
  ];
  test.each(rows)('$name', ({ notice: n, routes, state, actions, unconfigured }) => {
    expect(decide(n, routes, state, NOW)).toEqual({ actions, unconfigured: unconfigured ?? [] });
  });
});

describe('toNotice', () => {
  test('ignores types that are not notifications', () => {
    const started = buildEvent(EventTypes.trainingSucceeded, { step: 'track-training', data: { model: 'm', run: 'm-1', profile: 'cpu', completedAt: TIME, artifactPath: '/mnt/models/m/model.pkl' } });
    expect(toNotice(started as never)).toEqual({ kind: 'ignored', reason: 'type dev.mlops.training.succeeded.v1 is not a notification' });
    expect(toNotice({ type: 'com.example.other', id: '1', source: '/x', data: {} })).toEqual({ kind: 'ignored', reason: 'type com.example.other is not a notification' });
  });
  test('a storage bootstrap failure: no run, one notice per failed attempt, routed by the default routes', () => {
    const ce = buildEvent(EventTypes.storageFailed, {
      step: 'storage-bootstrap', id: 'storage-mx1.failed', subject: 'storage', time: TIME,
      data: { stage: 'connectivity', reason: 'bad-credentials', message: 'PUT s3://model-storage/.mlops-storage-probe/mx1: the credentials are wrong (403 SignatureDoesNotMatch)', bucket: 'model-storage', failedAt: TIME },
    });
    const n = notice(ce);
    expect(n).toMatchObject({ key: 'storage.failed', shortType: 'storage-failed', model: undefined, run: undefined,
      details: [['Stage', 'connectivity'], ['Reason', 'bad-credentials'], ['Bucket', 'model-storage']], problem: expect.stringContaining('SignatureDoesNotMatch') });
    expect(n.recordKey).toMatch(/^storage-failed-[0-9a-f]{8}$/);
    const plan = decide(n, DefaultRoutes, noRun, NOW);
    expect(plan.actions.map((a) => a.kind)).toEqual(['slack', 'k8s-event']);
  });
  test('refuses our type with bad data', () => {
    expect(toNotice({ type: EventTypes.runFailed, id: '1', source: '/x', data: { model: 'm' } })).toMatchObject({ kind: 'invalid' });
  });
  test('a dead letter is recognised by any one Knative extension, whatever its type', () => {
    const n = notice({ type: 'com.example.other', id: 'x-1', source: '/elsewhere', knativeerrordest: 'http://svc.ns.svc' });
    expect(n).toMatchObject({ key: 'dead-letter', shortType: 'dead-letter', model: undefined, run: undefined, problem: undefined });
    expect(eventNameOf(n)).toMatch(/^model-lifecycle\.dead-letter-[0-9a-f]{8}$/);
  });
  test('one dead-letter record per dead-lettered event', () => {
    const a = notice({ type: 't', id: 'a', source: '/s', knativeerrorcode: '500' });
    const b = notice({ type: 't', id: 'b', source: '/s', knativeerrorcode: '500' });
    const a2 = notice({ type: 't', id: 'a', source: '/s', knativeerrorcode: '503' });
    expect(a.recordKey).not.toBe(b.recordKey);
    expect(a.recordKey).toBe(a2.recordKey);
  });
  test('a rejection by the baseline checks says what was compared, the numbers and the thresholds (docs/gate.md)', () => {
    const message = 'gate rejected the model; failed checks: baseline-agreement, baseline-metrics (...); baseline vs served release anomaly-detector-r0 on 400 reference rows with targets: agreement 0.5525 (min 0.9), anomaly rate 0.11 → 0.5575 (max change 0.1), worst metric regression 0.2967 (max 0.1)';
    const n = notice(buildEvent(EventTypes.modelRejected, {
      step: 'gate-health', time: TIME,
      data: {
        model: 'anomaly-detector', run: RUN, message, failed: ['baseline-agreement', 'baseline-metrics'],
        checks: [
          { name: 'output-values', ok: true },
          { name: 'baseline-agreement', ok: false, message: 'labels agree on 0.5525 of rows, minAgreement NOT met: 0.9' },
          { name: 'baseline-metrics', ok: false, message: 'worst regression precision 0.2967, maxMetricRegression NOT met: 0.1' },
        ],
      },
    }));
    expect(n.details).toEqual([['Failed checks', 'baseline-agreement, baseline-metrics']]);
    expect(n.problem).toBe([
      message,
      '- baseline-agreement: labels agree on 0.5525 of rows, minAgreement NOT met: 0.9',
      '- baseline-metrics: worst regression precision 0.2967, maxMetricRegression NOT met: 0.1',
    ].join('\n'));
  });
  test('a run-scoped notice is keyed by run and type, not by event id', () => {
    const failed = (id: string) => notice(buildEvent(EventTypes.runFailed, { step: 'watchdog', id, data: { model: 'm', run: 'm-1', step: 'training', reason: 'deadline', message: 'late' } }));
    expect(failed('one').recordKey).toBe('run-failed');
    expect(eventNameOf(failed('two'))).toBe('m-1.run-failed');
  });
});

describe('helpers', () => {
  test.each([[0, '0s'], [59_999, '59s'], [61_000, '1m 1s'], [3_723_000, '1h 2m 3s'], [-5, '0s']])('formatDuration(%p) = %p', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
  test('channels round-trip in canonical order, unknown names dropped', () => {
    expect(parseChannels('event, slack,bogus')).toEqual(['slack', 'event']);
    expect(parseChannels(undefined)).toEqual([]);
    expect(formatChannels(['event', 'email', 'slack', 'email'])).toBe('slack,email,event');
  });
  test('stripUrls removes every URL', () => {
    expect(stripUrls('fetch https://hooks.slack.com/services/T/B/x failed; smtp://u:p@h:25 too')).toBe('fetch [url] failed; [url] too');
  });
  test('HTML in messages is escaped in the email body', () => {
    const n = notice(buildEvent(EventTypes.runFailed, { step: 'watchdog', data: { model: 'm', run: 'm-1', step: 'copy', reason: 'x', message: '<script>alert("x")</script> & more' } }));
    const plan = decide(n, ALL, noRun, NOW);
    const email = plan.actions.find((a) => a.kind === 'email');
    expect(email?.kind === 'email' && email.html).toContain('<pre>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more</pre>');
    expect(email?.kind === 'email' && email.html).not.toContain('<script>');
  });
});

describe('dead-letter tally on the ModelRun (read by kube-state-metrics)', () => {
  test('counts distinct dead letters, a redelivery neither recounts nor moves the time', () => {
    const first = deadLetterTally(deadLetter, { 'mlops.dev/notified-model-rejected': 'slack' }, NOW);
    expect(first).toEqual({ [DeadLetterAnnotations.count]: '1', [DeadLetterAnnotations.at]: NOW.toISOString() });
    const own = notifiedAnnotationOf(deadLetter);
    expect(deadLetterTally(deadLetter, { [own]: 'slack' }, NOW)).toEqual({ [DeadLetterAnnotations.count]: '1' });
    expect(deadLetterTally(deadLetter, { 'mlops.dev/notified-dead-letter-00000000': 'event' }, NOW))
      .toEqual({ [DeadLetterAnnotations.count]: '2', [DeadLetterAnnotations.at]: NOW.toISOString() });
  });
  test('other notices leave the tally alone', () => {
    expect(deadLetterTally(skipped, {}, NOW)).toEqual({});
  });
});

describe('a rejection by the baseline checks, from the gate report to Slack and email', () => {
  // The report config/jobs/gate.py writes for the baseline-regression scenario's anomaly-detector (docs/gate.md,
  // "Locally"): a detector flagging 63% of rows against the served release that flags 1.75%. The shipped catalog's
  // defaults apply; the rejection message is gate-health's own (evaluateGate), the notification notify's own.
  const anomaly = findModel(loadCatalog('config/models.yaml'), 'anomaly-detector') as CatalogModel;
  const core = ['exists', 'min-bytes', 'sha256', 'load', 'has-predict', 'predict', 'output-shape', 'output-values'].map((name) => ({ name, ok: true, message: `${name} ok`, observed: name === 'sha256' ? 'b'.repeat(64) : true }));
  const report = {
    ok: false,
    checks: [
      ...core,
      { name: 'reference-data', ok: true, message: '400 rows with targets; served: anomaly-detector-seed', observed: { rows: 400, targets: true } },
      { name: 'baseline-agreement', ok: false, message: 'labels agree on 0.39 of rows, minAgreement NOT met: 0.9', observed: 0.39 },
      { name: 'baseline-rate', ok: false, message: 'anomaly rate 0.0175 -> 0.6275, maxRateChange NOT met: 0.1', observed: 0.61 },
      { name: 'baseline-metrics', ok: false, message: 'worst regression precision 0.9203, maxMetricRegression NOT met: 0.1', observed: 0.9203 },
    ],
    bytes: 180_000, sha256: 'b'.repeat(64), loadSeconds: 0.04, probe: { rows: [Array.from({ length: 45 }, () => 0.1)], expected: [1] },
    python: '3.11.2', sklearn: '1.2.1', truncated: true,
    baseline: {
      served: { state: 'release', release: 'anomaly-detector-seed' }, reference: { rows: 400, targets: true }, trigger: 'schedule', advisory: [],
      thresholds: { minAgreement: 0.9, maxRateChange: 0.1, maxRelativeChange: null, maxMetricRegression: 0.1 },
      candidate: { precision: 0.0797, recall: 1, anomalyRate: 0.6275 }, servedMetrics: { precision: 1, recall: 0.35, anomalyRate: 0.0175 },
      comparison: { agreement: 0.39, candidateRate: 0.6275, servedRate: 0.0175, rateChange: 0.61 }, metricChanges: { precision: 0.9203, recall: -0.65 },
    },
  };
  const message = 'gate rejected the model; failed checks: baseline-agreement, baseline-rate, baseline-metrics ('
    + 'baseline-agreement: labels agree on 0.39 of rows, minAgreement NOT met: 0.9; '
    + 'baseline-rate: anomaly rate 0.0175 -> 0.6275, maxRateChange NOT met: 0.1; '
    + 'baseline-metrics: worst regression precision 0.9203, maxMetricRegression NOT met: 0.1); '
    + 'baseline vs served release anomaly-detector-seed on 400 reference rows with targets: '
    + 'agreement 0.39 (min 0.9), anomaly rate 0.0175 → 0.6275 (max change 0.1), worst metric regression 0.9203 (max 0.1)';
  const lines = [
    message,
    '- baseline-agreement: labels agree on 0.39 of rows, minAgreement NOT met: 0.9',
    '- baseline-rate: anomaly rate 0.0175 -> 0.6275, maxRateChange NOT met: 0.1',
    '- baseline-metrics: worst regression precision 0.9203, maxMetricRegression NOT met: 0.1',
  ];

  test('Slack Block Kit and the text email say what was compared, the numbers and the thresholds', () => {
    const verdict = evaluateGate({ job: `${RUN}-gate`, succeeded: true, result: report }, { model: anomaly, mode: 'cluster' });
    if (verdict.verdict !== 'rejected') throw new Error('expected a rejection');
    expect(verdict.failed).toEqual(['baseline-agreement', 'baseline-rate', 'baseline-metrics']);
    expect(verdict.message).toBe(message);
    const n = notice(buildEvent(EventTypes.modelRejected, {
      step: 'gate-health', time: TIME,
      data: { model: 'anomaly-detector', run: RUN, checks: verdict.checks, failed: verdict.failed, message: verdict.message },
    }));
    const plan = decide(n, ALL, { ...withRun, run: { ...withRun.run!, trigger: 'schedule', provenance: {} } }, NOW);
    const header = `Model rejected by the health gate: anomaly-detector (${RUN})`;
    const fields = ['Model: anomaly-detector', `Run: ${RUN}`, 'Trigger: schedule', 'Failed checks: baseline-agreement, baseline-rate, baseline-metrics', 'Duration: 1h 3m 4s'];
    const slack = plan.actions.find((a) => a.kind === 'slack');
    expect(slack).toEqual({
      kind: 'slack',
      message: {
        text: [header, ...fields, ...lines].join('\n'),
        blocks: [
          { type: 'header', text: { type: 'plain_text', text: 'Model rejected by the health gate: anomaly-detector', emoji: false } },
          {
            type: 'section',
            fields: [
              { type: 'mrkdwn', text: '*Model*\nanomaly-detector' },
              { type: 'mrkdwn', text: `*Run*\n${RUN}` },
              { type: 'mrkdwn', text: '*Trigger*\nschedule' },
              { type: 'mrkdwn', text: '*Failed checks*\nbaseline-agreement, baseline-rate, baseline-metrics' },
              { type: 'mrkdwn', text: '*Duration*\n1h 3m 4s' },
            ],
          },
          // Slack escapes only &, < and >: "->" becomes "-&gt;".
          { type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${lines.join('\n').replaceAll('>', '&gt;')}\`\`\`` } },
          { type: 'context', elements: [{ type: 'mrkdwn', text: `CloudEvent ${RUN}.model.rejected from /model-lifecycle/gate-health` }] },
        ],
      },
    });
    const email = plan.actions.find((a) => a.kind === 'email');
    expect(email && email.kind === 'email' ? email.text : undefined).toBe([header, ...fields, ...lines, '', `CloudEvent ${RUN}.model.rejected from /model-lifecycle/gate-health`, ''].join('\n'));
    expect(email && email.kind === 'email' ? email.subject : undefined).toBe(`[model-lifecycle] anomaly-detector model.rejected (${RUN})`);
  });
});
