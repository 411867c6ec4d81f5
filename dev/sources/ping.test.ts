import type { CloudEvent } from 'cloudevents';
import { afterEach, describe, expect, test } from '@jest/globals';
import { startBroker } from '../broker/index.ts';
import { startSubscriber, trigger } from '../broker/testkit.ts';
import { compilePingSource, nextPingTime, startPingSources, type PingSources } from './index.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function ping(name: string, spec: Record<string, unknown>, namespace = 'mlops'): object {
  return { apiVersion: 'sources.knative.dev/v1', kind: 'PingSource', metadata: { name, namespace }, spec: { sink: { ref: { kind: 'Broker', name: 'default' } }, ...spec } };
}

const started: PingSources[] = [];
afterEach(() => {
  for (const s of started.splice(0)) s.stop();
});

function nextN(source: object, from: string, n: number): string[] {
  const compiled = compilePingSource(source);
  const out: string[] = [];
  let at = new Date(from);
  for (let i = 0; i < n; i++) {
    at = nextPingTime(compiled, at);
    out.push(at.toISOString());
  }
  return out;
}

describe('PingSource schedule', () => {
  test('spec.timezone is honoured across the spring-forward DST change', () => {
    // Berlin moves from UTC+1 to UTC+2 at 2024-03-31 01:00Z: 09:00 local is 08:00Z, then 07:00Z
    expect(nextN(ping('p', { schedule: '0 9 * * *', timezone: 'Europe/Berlin' }), '2024-03-29T12:00:00Z', 3)).toEqual([
      '2024-03-30T08:00:00.000Z',
      '2024-03-31T07:00:00.000Z',
      '2024-04-01T07:00:00.000Z',
    ]);
  });

  test('a local time skipped by DST fires once, an hour later; a repeated local time fires once', () => {
    expect(nextN(ping('p', { schedule: '30 2 * * *', timezone: 'America/New_York' }), '2024-03-09T12:00:00Z', 3)).toEqual([
      '2024-03-10T07:30:00.000Z', // 02:30 does not exist that day: 03:30 EDT
      '2024-03-11T06:30:00.000Z',
      '2024-03-12T06:30:00.000Z',
    ]);
    expect(nextN(ping('p', { schedule: '30 1 * * *', timezone: 'America/New_York' }), '2024-11-02T12:00:00Z', 2)).toEqual([
      '2024-11-03T05:30:00.000Z', // 01:30 happens twice; only the first (EDT) fires
      '2024-11-04T06:30:00.000Z',
    ]);
  });

  test('CRON_TZ= prefix, UTC default, and the seed models’ Sunday schedules', () => {
    expect(nextN(ping('p', { schedule: 'CRON_TZ=Asia/Tokyo 0 2 * * 0' }), '2024-03-30T00:00:00Z', 1)).toEqual(['2024-03-30T17:00:00.000Z']);
    expect(nextN(ping('p', { schedule: '0 2 * * 0' }), '2024-03-30T12:00:00Z', 2)).toEqual(['2024-03-31T02:00:00.000Z', '2024-04-07T02:00:00.000Z']);
    expect(nextN(ping('p', {}), '2024-03-30T12:00:30Z', 1)).toEqual(['2024-03-30T12:01:00.000Z']); // default * * * * *
  });

  test('bad schedules and timezones fail at load', () => {
    expect(() => compilePingSource(ping('bad-tz', { schedule: '0 2 * * 0', timezone: 'Mars/Olympus' }))).toThrow(/PingSource bad-tz: unknown timezone "Mars\/Olympus"/);
    expect(() => compilePingSource(ping('bad-cron', { schedule: '0 2 * *' }))).toThrow(/PingSource bad-cron: schedule "0 2 \* \*" must have 5 fields/);
    expect(() => compilePingSource(ping('bad-field', { schedule: '99 2 * * 0' }))).toThrow(/PingSource bad-field: invalid schedule/);
    expect(() => compilePingSource(ping('both', { data: 'a', dataBase64: 'YQ==' }))).toThrow(/mutually exclusive/);
  });
});

describe('PingSource events', () => {
  test('fireNow emits the Knative ping event with JSON data, overrides and the given time', async () => {
    const sent: CloudEvent<unknown>[] = [];
    const pings = startPingSources({
      sources: [ping('anomaly-detector-weekly', { schedule: '0 2 * * 0', data: '{"model":"anomaly-detector"}', ceOverrides: { extensions: { model: 'anomaly-detector' } } })],
      sink: (ce) => {
        sent.push(ce);
        return Promise.resolve();
      },
    });
    started.push(pings);
    const at = new Date('2024-03-31T02:00:00Z');
    const ce = await pings.fireNow('anomaly-detector-weekly', at);
    expect(sent).toEqual([ce]);
    expect(ce.type).toBe('dev.knative.sources.ping');
    expect(ce.source).toBe('/apis/v1/namespaces/mlops/pingsources/anomaly-detector-weekly');
    expect(ce.time).toBe('2024-03-31T02:00:00.000Z');
    expect(ce.id).toMatch(UUID);
    expect(ce.datacontenttype).toBe('application/json');
    expect(ce.data).toEqual({ model: 'anomaly-detector' });
    expect(ce['model']).toBe('anomaly-detector');
    await expect(pings.fireNow('nope')).rejects.toThrow('no PingSource named nope');
    const byKey = await pings.fireNow('mlops/anomaly-detector-weekly');
    expect(byKey.id).not.toBe(ce.id);
  });

  test('plain text data, explicit contentType and dataBase64', async () => {
    const sent: CloudEvent<unknown>[] = [];
    const pings = startPingSources({
      sources: [
        ping('text', { data: 'hello' }),
        ping('explicit', { data: '{"a":1}', contentType: 'text/plain' }),
        ping('bytes', { dataBase64: Buffer.from([1, 2, 3]).toString('base64'), contentType: 'application/octet-stream' }),
        ping('empty', {}),
      ],
      sink: (ce) => {
        sent.push(ce);
        return Promise.resolve();
      },
    });
    started.push(pings);
    const text = await pings.fireNow('text');
    expect([text.datacontenttype, text.data]).toEqual(['text/plain', 'hello']);
    const explicit = await pings.fireNow('explicit');
    expect([explicit.datacontenttype, explicit.data]).toEqual(['text/plain', '{"a":1}']);
    const bytes = await pings.fireNow('bytes');
    expect(bytes.data_base64).toBe('AQID');
    const empty = await pings.fireNow('empty');
    expect(empty.data).toBeUndefined();
  });

  test('the schedule fires on its own with time = the scheduled slot, through a real broker', async () => {
    const sub = await startSubscriber();
    const broker = await startBroker({
      triggers: [trigger('weekly', { subscriber: { uri: `${sub.url}/start-training` }, filter: { attributes: { type: 'dev.knative.sources.ping' } } })],
      resolve: () => undefined,
    });
    try {
      // a clock 200 ms before a minute boundary, so `* * * * *` fires in 200 ms of real time
      const fakeStart = Date.parse('2024-03-31T01:59:59.800Z');
      const offset = fakeStart - Date.now();
      const pings = startPingSources({ sources: [ping('every-minute', { schedule: '* * * * *' })], sink: (ce) => broker.send(ce), now: () => new Date(Date.now() + offset) });
      started.push(pings);
      expect(pings.nextFireTimes()).toEqual({ 'mlops/every-minute': new Date('2024-03-31T02:00:00.000Z') });
      for (let i = 0; i < 100 && sub.received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      await broker.idle(5000);
      expect(sub.received.map((r) => [r.path, r.event.type, r.event.time])).toEqual([['/start-training', 'dev.knative.sources.ping', '2024-03-31T02:00:00.000Z']]);
      // the next slot is armed a minute later (an unref'd timer, so it never holds the process open)
      expect(pings.nextFireTimes()['mlops/every-minute']).toEqual(new Date('2024-03-31T02:01:00.000Z'));
    } finally {
      await broker.close();
      await sub.close();
    }
  });
});
