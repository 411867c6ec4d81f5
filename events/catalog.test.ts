import {
  ALL_EVENT_TYPES,
  EventDataSchemas,
  EventTypes,
  Extensions,
  isEventType,
  nounVerbOf,
  sourceOf,
  type EventType,
} from './catalog.ts';
import { fixture } from './fixtures/load.ts';

interface Case {
  name: string;
  type: EventType;
  data: Record<string, unknown>;
  path?: string;
}

// "OVERSIZE:N" in a fixture stands for a string of N characters (keeps the JSON readable).
function expand(value: unknown): unknown {
  if (typeof value === 'string') {
    const m = /^OVERSIZE:(\d+)$/.exec(value);
    return m ? 'x'.repeat(Number(m[1])) : value;
  }
  if (Array.isArray(value)) return value.map(expand);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expand(v)]));
  return value;
}

const valid = (fixture('events/valid.json') as Case[]).map((c) => ({ ...c, data: expand(c.data) as Record<string, unknown> }));
const invalid = (fixture('events/invalid.json') as Case[]).map((c) => ({ ...c, data: expand(c.data) as Record<string, unknown> }));

function pathOf(issuePath: readonly PropertyKey[]): string {
  let out = 'data';
  for (const key of issuePath) out += typeof key === 'number' ? `[${key}]` : `.${String(key)}`;
  return out;
}

describe('EventTypes', () => {
  test('every type is dev.mlops.<noun>.<verb>.v1 and matches its key', () => {
    expect(Object.keys(EventTypes)).toHaveLength(17);
    for (const [key, type] of Object.entries(EventTypes)) {
      // A noun may have two parts (`storage.bootstrap.requested`).
      expect(type).toMatch(/^dev\.mlops\.[a-z]+(\.[a-z]+)?\.[a-z]+\.v1$/);
      expect(key.toLowerCase()).toBe(nounVerbOf(type).split('.').join(''));
    }
  });

  test('the documented type strings', () => {
    expect(EventTypes).toEqual({
      trainingRequested: 'dev.mlops.training.requested.v1',
      trainingStarted: 'dev.mlops.training.started.v1',
      trainingSkipped: 'dev.mlops.training.skipped.v1',
      trainingSucceeded: 'dev.mlops.training.succeeded.v1',
      trainingFailed: 'dev.mlops.training.failed.v1',
      modelCopied: 'dev.mlops.model.copied.v1',
      modelApproved: 'dev.mlops.model.approved.v1',
      modelRejected: 'dev.mlops.model.rejected.v1',
      predictorRestarted: 'dev.mlops.predictor.restarted.v1',
      deploymentVerified: 'dev.mlops.deployment.verified.v1',
      deploymentFailed: 'dev.mlops.deployment.failed.v1',
      deploymentRolledback: 'dev.mlops.deployment.rolledback.v1',
      runFailed: 'dev.mlops.run.failed.v1',
      runReconcile: 'dev.mlops.run.reconcile.v1',
      storageBootstrapRequested: 'dev.mlops.storage.bootstrap.requested.v1',
      storageValidated: 'dev.mlops.storage.validated.v1',
      storageFailed: 'dev.mlops.storage.failed.v1',
    });
  });

  test('isEventType', () => {
    for (const type of ALL_EVENT_TYPES) expect(isEventType(type)).toBe(true);
    expect(isEventType('dev.mlops.training.requested.v2')).toBe(false);
    expect(isEventType(undefined)).toBe(false);
  });

  test('every type has a data schema', () => {
    expect(Object.keys(EventDataSchemas).sort()).toEqual([...ALL_EVENT_TYPES].sort());
  });

  test('extension names are CloudEvents-legal', () => {
    expect(Extensions).toEqual({ model: 'model', run: 'run', profile: 'profile', traceparent: 'traceparent', target: 'target' });
    for (const name of Object.values(Extensions)) expect(name).toMatch(/^[a-z0-9]+$/);
  });

  test('sourceOf', () => {
    expect(sourceOf('start-training')).toBe('/model-lifecycle/start-training');
  });

  test('the fixtures cover every type with good and bad data', () => {
    for (const type of ALL_EVENT_TYPES) {
      expect(valid.some((c) => c.type === type)).toBe(true);
      expect(invalid.some((c) => c.type === type)).toBe(true);
    }
  });
});

describe('valid data', () => {
  test.each(valid.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const parsed = EventDataSchemas[c.type].safeParse(c.data);
    expect(parsed.error?.issues).toBeUndefined();
    expect(parsed.data).toEqual(c.data);
  });
});

describe('invalid data', () => {
  test.each(invalid.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const parsed = EventDataSchemas[c.type].safeParse(c.data);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => pathOf(i.path))).toContain(c.path);
  });
});

describe('strictness', () => {
  test.each(valid.map((c) => [c.name, c] as const))('%s rejects an unknown key', (_name, c) => {
    const parsed = EventDataSchemas[c.type].safeParse({ ...c.data, unexpected: true });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.code).toBe('unrecognized_keys');
  });
});
