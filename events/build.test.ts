import { CloudEvent } from 'cloudevents';
import { buildEvent, decodeEventData, EventValidationError, parseEvent } from './build.ts';
import { EventTypes, type EventData } from './catalog.ts';

const started: EventData<typeof EventTypes.trainingStarted> = {
  model: 'anomaly-detector',
  run: 'anomaly-detector-20240331-0100',
  trigger: 'schedule',
  profile: 'cpu',
  notebookValidationJob: 'anomaly-detector-20240331-0100',
  startedAt: '2024-03-31T01:00:02Z',
  deadline: '2024-03-31T05:00:02Z',
};

const requested: EventData<typeof EventTypes.trainingRequested> = { model: 'anomaly-detector', trigger: 'manual', reason: 'test' };
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('buildEvent', () => {
  test('builds a complete CloudEvent', () => {
    const ce = buildEvent(EventTypes.trainingStarted, {
      step: 'start-training',
      data: started,
      traceparent: TRACEPARENT,
      time: '2024-03-31T01:00:03Z',
    });
    expect(ce).toBeInstanceOf(CloudEvent);
    expect(ce.toJSON()).toEqual({
      specversion: '1.0',
      id: 'anomaly-detector-20240331-0100.training.started',
      type: 'dev.mlops.training.started.v1',
      source: '/model-lifecycle/start-training',
      subject: 'anomaly-detector-20240331-0100',
      time: '2024-03-31T01:00:03.000Z',
      datacontenttype: 'application/json',
      data: started,
      model: 'anomaly-detector',
      run: 'anomaly-detector-20240331-0100',
      profile: 'cpu',
      traceparent: TRACEPARENT,
    });
  });

  test('the id is deterministic per run and type, so a redelivered input yields the same output id', () => {
    const a = buildEvent(EventTypes.trainingStarted, { step: 'start-training', data: started });
    const b = buildEvent(EventTypes.trainingStarted, { step: 'start-training', data: started });
    expect(a.id).toBe(b.id);
    expect(a.id).toBe('anomaly-detector-20240331-0100.training.started');
    const failed = buildEvent(EventTypes.runFailed, {
      step: 'watchdog',
      data: { model: 'm', run: 'm-r1', step: 'watchdog', reason: 'deadline', message: 'late' },
    });
    expect(failed.id).toBe('m-r1.run.failed');
  });

  test('an explicit run option wins for id, subject and extension', () => {
    const ce = buildEvent(EventTypes.trainingRequested, { step: 'watchdog', data: requested, run: 'm-r9' });
    expect(ce.id).toBe('m-r9.training.requested');
    expect(ce.subject).toBe('m-r9');
    expect(ce.run).toBe('m-r9');
  });

  test('without a run the id is a fresh uuid and there is no subject or run extension', () => {
    const a = buildEvent(EventTypes.trainingRequested, { step: 'drift-intake', data: requested });
    const b = buildEvent(EventTypes.trainingRequested, { step: 'drift-intake', data: requested });
    expect(a.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a.id).not.toBe(b.id);
    expect(a.subject).toBeUndefined();
    expect('run' in a).toBe(false);
    expect('profile' in a).toBe(false);
    expect('traceparent' in a).toBe(false);
    expect(a.model).toBe('anomaly-detector');
  });

  test('explicit id, subject, model and profile options are used as given', () => {
    const ce = buildEvent(EventTypes.trainingRequested, {
      step: 'git-intake',
      data: { ...requested, profile: 'cpu' },
      id: 'delivery-72d3162e',
      subject: 'push',
      model: 'anomaly-detector',
      profile: 'gpu',
    });
    expect(ce.id).toBe('delivery-72d3162e');
    expect(ce.subject).toBe('push');
    expect(ce.profile).toBe('gpu');
  });

  test('every extension name matches [a-z0-9]+', () => {
    const ce = buildEvent(EventTypes.trainingStarted, { step: 'start-training', data: started, traceparent: TRACEPARENT });
    const standard = new Set(['specversion', 'id', 'type', 'source', 'subject', 'time', 'datacontenttype', 'data']);
    const extensions = Object.entries(ce.toJSON()).filter(([k, v]) => v !== undefined && !standard.has(k)).map(([k]) => k);
    expect(extensions.sort()).toEqual(['model', 'profile', 'run', 'traceparent']);
    for (const name of extensions) expect(name).toMatch(/^[a-z0-9]+$/);
  });

  test('a malformed traceparent is dropped, never fatal', () => {
    const ce = buildEvent(EventTypes.trainingStarted, { step: 'start-training', data: started, traceparent: 'garbage' });
    expect('traceparent' in ce).toBe(false);
  });

  test('the time defaults to now', () => {
    const before = Date.now();
    const ce = buildEvent(EventTypes.trainingStarted, { step: 'start-training', data: started });
    const at = Date.parse(ce.time as string);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(Date.now());
  });

  test.each([
    ['bad data field', EventTypes.trainingStarted, { step: 'start-training', data: { ...started, profile: 'tpu' } }, 'invalid dev.mlops.training.started.v1 event: data.profile: Invalid option: expected one of "cpu"|"gpu"'],
    ['missing data field', EventTypes.trainingStarted, { step: 'start-training', data: { ...started, run: undefined } }, 'invalid dev.mlops.training.started.v1 event: data.run: Invalid input: expected string, received undefined'],
    ['unknown data key', EventTypes.trainingRequested, { step: 'x', data: { ...requested, extra: 1 } }, 'invalid dev.mlops.training.requested.v1 event: data: Unrecognized key: "extra"'],
    ['bad git ref', EventTypes.trainingRequested, { step: 'x', data: { ...requested, gitRef: 'main..x' } }, 'invalid dev.mlops.training.requested.v1 event: data.gitRef: invalid git ref: must not contain ".."'],
    ['bad step', EventTypes.trainingRequested, { step: '../etc', data: requested }, 'invalid dev.mlops.training.requested.v1 event: step "../etc" must be a DNS-1123 label'],
    ['bad run option', EventTypes.trainingRequested, { step: 'x', data: requested, run: 'Run 1' }, 'invalid dev.mlops.training.requested.v1 event: run "Run 1" must be a DNS-1123 label'],
    ['bad model option', EventTypes.trainingRequested, { step: 'x', data: requested, model: 'a_b' }, 'invalid dev.mlops.training.requested.v1 event: model "a_b" must be a DNS-1123 label'],
    ['bad profile option', EventTypes.trainingRequested, { step: 'x', data: requested, profile: 'tpu' }, 'invalid dev.mlops.training.requested.v1 event: profile must be cpu or gpu'],
    ['bad time', EventTypes.trainingRequested, { step: 'x', data: requested, time: 'soon' }, 'invalid dev.mlops.training.requested.v1 event: time "soon" is not a date-time'],
    ['empty id', EventTypes.trainingRequested, { step: 'x', data: requested, id: '' }, 'invalid dev.mlops.training.requested.v1 event: id must not be empty'],
    ['unknown type', 'dev.mlops.nope.v1', { step: 'x', data: requested }, 'invalid dev.mlops.nope.v1 event: unknown event type'],
  ])('%s → EventValidationError', (_name, type, opts, message) => {
    let caught: unknown;
    try {
      buildEvent(type as never, opts as never);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EventValidationError);
    expect((caught as Error).message.startsWith(message)).toBe(true);
    expect((caught as Error).message).not.toContain('\n');
  });
});

describe('parseEvent', () => {
  const built = buildEvent(EventTypes.trainingStarted, { step: 'start-training', data: started });

  test.each([
    ['SDK CloudEvent', built],
    ['structured JSON', JSON.parse(JSON.stringify(built)) as Record<string, unknown>],
    ['data as JSON string', { ...JSON.parse(JSON.stringify(built)), data: JSON.stringify(started) }],
    ['data_base64', { type: built.type, data_base64: Buffer.from(JSON.stringify(started)).toString('base64') }],
    ['data as bytes', { type: built.type, data: new TextEncoder().encode(JSON.stringify(started)) }],
  ])('accepts %s', (_name, ce) => {
    const parsed = parseEvent(ce as { type: string });
    expect(parsed).toEqual({ ok: true, type: EventTypes.trainingStarted, data: started });
    if (parsed.ok && parsed.type === EventTypes.trainingStarted) expect(parsed.data.notebookValidationJob).toBe(started.notebookValidationJob);
  });

  test.each([
    ['unknown type', { type: 'dev.knative.sources.ping', data: {} }, 'unknown event type "dev.knative.sources.ping"'],
    ['no data', { type: EventTypes.runFailed }, 'data: missing'],
    ['null data', { type: EventTypes.runFailed, data: null }, 'data: missing'],
    ['data not JSON', { type: EventTypes.runFailed, data: '{nope' }, 'data: not valid JSON'],
    ['wrong field type', { type: EventTypes.modelCopied, data: { model: 'm', run: 'm-r1', path: 'p', bytes: '12', sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' } }, 'data.bytes: Invalid input: expected number, received string'],
    ['nested field', { type: EventTypes.modelRejected, data: { model: 'm', run: 'm-r1', checks: [{ name: 'exists', ok: 'no' }], failed: ['exists'], message: 'x' } }, 'data.checks[0].ok: Invalid input: expected boolean, received string'],
    ['two issues', { type: EventTypes.runFailed, data: { model: 'M', run: 'm-r1', step: 'copy', reason: 'x' } }, 'data.model: must be a DNS-1123 label (lower-case letters, digits and "-", alphanumeric at both ends); data.message: Invalid input: expected string, received undefined'],
  ])('rejects %s', (_name, ce, reason) => {
    expect(parseEvent(ce as { type: string })).toEqual({ ok: false, reason });
  });

  test('round-trips every type built with buildEvent', () => {
    const ce = buildEvent(EventTypes.deploymentRolledback, {
      step: 'restart-predictor',
      data: { model: 'm', run: 'm-r1', failedRelease: 'm-r1', restoredRelease: null, message: 'restored nothing' },
    });
    expect(parseEvent(JSON.parse(ce.toString()) as { type: string })).toEqual({ ok: true, type: ce.type, data: ce.data });
  });
});

describe('decodeEventData', () => {
  test('passes objects through and decodes strings and base64', () => {
    expect(decodeEventData({ data: { a: 1 } })).toEqual({ a: 1 });
    expect(decodeEventData({ data: '{"a":1}' })).toEqual({ a: 1 });
    expect(decodeEventData({ data_base64: Buffer.from('{"a":1}').toString('base64') })).toEqual({ a: 1 });
    expect(decodeEventData({})).toBeUndefined();
    expect(() => decodeEventData({ data: 'nope' })).toThrow(SyntaxError);
  });
});
