import http from 'node:http';
import { CloudEvent, HTTP } from 'cloudevents';
import { afterEach, describe, expect, test } from '@jest/globals';
import { formatTimeline, parseIsoDuration, startBroker, type Broker, type BrokerOptions } from './index.ts';
import { gaps, startSubscriber, trigger, type Script, type Subscriber } from './testkit.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function subscriber(script?: Script): Promise<Subscriber> {
  const s = await startSubscriber(script);
  cleanups.push(() => s.close());
  return s;
}

async function broker(opts: Partial<BrokerOptions> & { triggers: object[] }): Promise<Broker> {
  const b = await startBroker({ resolve: () => undefined, ...opts });
  cleanups.push(() => b.close());
  return b;
}

function event(attrs: Record<string, unknown> = {}): CloudEvent<unknown> {
  return new CloudEvent<unknown>({ type: 'dev.mlops.training.requested.v1', source: '/model-lifecycle/test', data: { model: 'm1' }, ...attrs });
}

function post(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('trigger filters', () => {
  test('an event reaches exactly the triggers whose filters match', async () => {
    const sub = await subscriber();
    const to = (path: string) => ({ subscriber: { uri: `${sub.url}/${path}` } });
    const b = await broker({
      triggers: [
        trigger('attr-type', { ...to('attr-type'), filter: { attributes: { type: 'dev.mlops.training.requested.v1' } } }),
        trigger('attr-ext', { ...to('attr-ext'), filter: { attributes: { type: 'dev.mlops.training.requested.v1', model: 'm1' } } }),
        trigger('attr-ext-miss', { ...to('attr-ext-miss'), filter: { attributes: { model: 'm2' } } }),
        trigger('attr-any', { ...to('attr-any'), filter: { attributes: { model: '' } } }),
        trigger('no-filter', to('no-filter')),
        trigger('exact', { ...to('exact'), filters: [{ exact: { profile: 'gpu' } }] }),
        trigger('exact-miss', { ...to('exact-miss'), filters: [{ exact: { profile: 'cpu' } }] }),
        trigger('prefix', { ...to('prefix'), filters: [{ prefix: { type: 'dev.mlops.training.' } }] }),
        trigger('prefix-miss', { ...to('prefix-miss'), filters: [{ prefix: { type: 'dev.mlops.model.' } }] }),
        trigger('suffix', { ...to('suffix'), filters: [{ suffix: { source: '/test' } }] }),
        trigger('suffix-missing-attr', { ...to('suffix-missing-attr'), filters: [{ suffix: { run: 'x' } }] }),
        trigger('all', { ...to('all'), filters: [{ all: [{ exact: { model: 'm1' } }, { prefix: { type: 'dev.mlops.' } }] }] }),
        trigger('all-miss', { ...to('all-miss'), filters: [{ all: [{ exact: { model: 'm1' } }, { exact: { profile: 'cpu' } }] }] }),
        trigger('any', { ...to('any'), filters: [{ any: [{ exact: { model: 'zzz' } }, { suffix: { type: '.requested.v1' } }] }] }),
        trigger('any-miss', { ...to('any-miss'), filters: [{ any: [{ exact: { model: 'zzz' } }, { exact: { model: 'yyy' } }] }] }),
        trigger('not', { ...to('not'), filters: [{ not: { exact: { profile: 'cpu' } } }] }),
        trigger('not-miss', { ...to('not-miss'), filters: [{ not: { exact: { model: 'm1' } } }] }),
        trigger('filters-anded', { ...to('filters-anded'), filters: [{ exact: { model: 'm1' } }, { exact: { profile: 'cpu' } }] }),
        // spec.filters wins over spec.filter when both are set
        trigger('filters-win', { ...to('filters-win'), filter: { attributes: { model: 'nope' } }, filters: [{ exact: { model: 'm1' } }] }),
        { ...(trigger('other-broker', to('other-broker')) as { spec: object }), spec: { broker: 'other', ...to('other-broker') } },
      ],
    });
    await b.send(event({ model: 'm1', profile: 'gpu' }));
    await b.idle(5000);
    const paths = sub.received.map((r) => r.path.slice(1)).sort();
    expect(paths).toEqual(['all', 'any', 'attr-any', 'attr-ext', 'attr-type', 'exact', 'filters-win', 'no-filter', 'not', 'prefix', 'suffix']);
    expect(b.records.filter((r) => r.outcome === 'delivered')).toHaveLength(11);
  });

  test('an attribute filter with an empty value still requires nothing, but a missing extension fails exact', async () => {
    const sub = await subscriber();
    const b = await broker({
      triggers: [
        trigger('any-model', { subscriber: { uri: `${sub.url}/any` }, filter: { attributes: { model: '' } } }),
        trigger('exact-model', { subscriber: { uri: `${sub.url}/exact` }, filters: [{ exact: { model: '' } }] }),
      ],
    });
    await b.send(event());
    await b.idle(5000);
    expect(sub.received.map((r) => r.path)).toEqual(['/any']);
  });

  test('cesql and malformed filters are rejected at load with a clear error', async () => {
    await expect(
      startBroker({ resolve: () => undefined, triggers: [trigger('sql', { subscriber: { uri: 'http://127.0.0.1:1/' }, filters: [{ cesql: "type = 'x'" }] })] }),
    ).rejects.toThrow(/trigger sql: spec\.filters\[0\]\.cesql: CESQL filters are not supported/);
    const b = await broker({ triggers: [] });
    expect(() => b.setTriggers([trigger('two', { subscriber: { uri: 'http://x/' }, filters: [{ exact: { a: 'b' }, prefix: { a: 'b' } }] })])).toThrow(
      /trigger two: spec\.filters\[0\] must have exactly one dialect/,
    );
    expect(() => b.setTriggers([trigger('bad-delay', { subscriber: { uri: 'http://x/' }, delivery: { backoffDelay: '200ms' } })])).toThrow(
      /trigger bad-delay spec\.delivery: invalid ISO-8601 duration "200ms"/,
    );
    expect(() => b.setTriggers([trigger('no-sub', {})])).toThrow(/trigger no-sub: spec\.subscriber/);
  });

  test('setTriggers replaces the routing table', async () => {
    const sub = await subscriber();
    const b = await broker({ triggers: [trigger('first', { subscriber: { uri: `${sub.url}/first` } })] });
    await b.send(event());
    await b.idle(5000);
    b.setTriggers([trigger('second', { subscriber: { uri: `${sub.url}/second` } })]);
    await b.send(event());
    await b.idle(5000);
    expect(sub.received.map((r) => r.path)).toEqual(['/first', '/second']);
  });
});

describe('ingress', () => {
  test('binary and structured CloudEvents are accepted with 202 and delivered in binary mode', async () => {
    const sub = await subscriber();
    const b = await broker({ triggers: [trigger('all', { subscriber: { uri: `${sub.url}/` } })] });
    const e1 = event({ id: 'bin-1', model: 'm1' });
    const bin = HTTP.binary(e1);
    const r1 = await post(b.url, Object.fromEntries(Object.entries(bin.headers).map(([k, v]) => [k, String(v)])), String(bin.body));
    const e2 = event({ id: 'str-1', model: 'm2' });
    const str = HTTP.structured(e2);
    const r2 = await post(b.url, { 'content-type': String(str.headers['content-type']) }, String(str.body));
    expect([r1.status, r2.status]).toEqual([202, 202]);
    await b.idle(5000);
    const got = sub.received.map((r) => ({ id: r.event.id, model: r.event['model'], data: r.event.data, binary: r.headers['ce-id'] !== undefined }));
    expect(got.sort((a, z) => a.id.localeCompare(z.id))).toEqual([
      { id: 'bin-1', model: 'm1', data: { model: 'm1' }, binary: true },
      { id: 'str-1', model: 'm2', data: { model: 'm1' }, binary: true },
    ]);
    // the broker's TTL bookkeeping never reaches subscribers
    expect(sub.received.every((r) => r.headers['ce-knativebrokerttl'] === undefined)).toBe(true);
  });

  test('send() rejects an invalid event; the URL names namespace and broker', async () => {
    const b = await broker({ triggers: [], namespace: 'mlops', name: 'default' });
    expect(b.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mlops\/default$/);
    await expect(b.send({ type: 'x', id: '1', specversion: '1.0' } as unknown as CloudEvent<unknown>)).rejects.toThrow();
    expect(b.records).toEqual([]);
  });

  test('invalid CloudEvents get 400, other methods 405', async () => {
    const b = await broker({ triggers: [] });
    const missingSource = await post(b.url, { 'ce-specversion': '1.0', 'ce-id': '1', 'ce-type': 't', 'content-type': 'application/json' }, '{}');
    expect(missingSource.status).toBe(400);
    expect(missingSource.body).toMatch(/source/);
    const plainJson = await post(b.url, { 'content-type': 'application/json' }, '{"hello":1}');
    expect(plainJson.status).toBe(400);
    const badStructured = await post(b.url, { 'content-type': 'application/cloudevents+json' }, '{not json');
    expect(badStructured.status).toBe(400);
    const get = await new Promise<number>((resolve, reject) => {
      http.get(b.url, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(get).toBe(405);
  });
});

describe('delivery', () => {
  async function measureRetries(delivery: object, timeScale = 1) {
    const sub = await subscriber((_r, nth) => ({ status: nth <= 3 ? 503 : 200 }));
    const b = await broker({ triggers: [trigger('t', { subscriber: { uri: `${sub.url}/` }, delivery })], timeScale });
    await b.send(event());
    await b.idle(10_000);
    expect(b.records.map((r) => [r.attempt, r.status, r.outcome])).toEqual([
      [1, 503, 'retry'],
      [2, 503, 'retry'],
      [3, 503, 'retry'],
      [4, 200, 'delivered'],
    ]);
    return gaps(sub.received.map((r) => r.at));
  }

  function expectGaps(actual: number[], expected: number[]) {
    expect(actual).toHaveLength(expected.length);
    actual.forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual((expected[i] as number) - 5);
      expect(gap).toBeLessThan((expected[i] as number) + 120);
    });
  }

  test('503 is retried with exponential backoff: delay * 2^n', async () => {
    expectGaps(await measureRetries({ retry: 3, backoffPolicy: 'exponential', backoffDelay: 'PT0.05S' }), [100, 200, 400]);
  });

  test('503 is retried with linear backoff: delay * n', async () => {
    expectGaps(await measureRetries({ retry: 3, backoffPolicy: 'linear', backoffDelay: 'PT0.1S' }), [100, 200, 300]);
  });

  test('timeScale scales backoff delays', async () => {
    expectGaps(await measureRetries({ retry: 3, backoffPolicy: 'linear', backoffDelay: 'PT1S' }, 0.1), [100, 200, 300]);
  });

  test('404, 408, 409 and 429 are retried', async () => {
    const statuses = [404, 408, 409, 429, 200];
    const sub = await subscriber((_r, nth) => ({ status: statuses[nth - 1] ?? 500 }));
    const b = await broker({ triggers: [trigger('t', { subscriber: { uri: `${sub.url}/` }, delivery: { retry: 5, backoffDelay: 'PT0.001S', backoffPolicy: 'linear' } })] });
    await b.send(event());
    await b.idle(5000);
    expect(b.records.map((r) => [r.status, r.outcome])).toEqual([
      [404, 'retry'],
      [408, 'retry'],
      [409, 'retry'],
      [429, 'retry'],
      [200, 'delivered'],
    ]);
  });

  test('400 goes to the dead-letter sink at once, with the Knative error extensions', async () => {
    const sub = await subscriber(() => ({ status: 400, body: 'model "x" is not in the catalog' }));
    const dls = await subscriber();
    const b = await broker({
      triggers: [trigger('t', { subscriber: { uri: `${sub.url}/fn` }, delivery: { retry: 3, backoffDelay: 'PT0.01S', deadLetterSink: { uri: `${dls.url}/dead` } } })],
    });
    await b.send(event({ id: 'e-400', model: 'x' }));
    await b.idle(5000);
    expect(sub.received).toHaveLength(1);
    expect(dls.received).toHaveLength(1);
    const dead = dls.received[0]!.event;
    expect(dead.id).toBe('e-400');
    expect(dead['model']).toBe('x');
    expect(dead['knativeerrorcode']).toBe('400');
    expect(dead['knativeerrordest']).toBe(`${sub.url}/fn`);
    expect(Buffer.from(String(dead['knativeerrordata']), 'base64').toString()).toBe('model "x" is not in the catalog');
    expect(b.records).toHaveLength(1);
    expect(b.records[0]).toMatchObject({ attempt: 1, status: 400, outcome: 'dead-lettered', deadLetter: { url: `${dls.url}/dead`, status: 202 } });
  });

  test('after the retry budget a 503 lands in the dead-letter sink (resolved from a ref), truncated error data', async () => {
    const sub = await subscriber(() => ({ status: 503, body: 'x'.repeat(5000) }));
    const dls = await subscriber();
    const b = await broker({
      triggers: [trigger('t', { subscriber: { uri: `${sub.url}/` } })],
      brokerDelivery: { retry: 2, backoffPolicy: 'linear', backoffDelay: 'PT0.01S', deadLetterSink: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'notify' } } },
      resolve: (ref) => (ref.kind === 'Service' && ref.name === 'notify' && ref.namespace === 'default' ? `${dls.url}/notify` : undefined),
    });
    await b.send(event());
    await b.idle(5000);
    expect(sub.received).toHaveLength(3);
    expect(b.records.map((r) => r.outcome)).toEqual(['retry', 'retry', 'dead-lettered']);
    expect(dls.byPath('/notify')).toHaveLength(1);
    const dead = dls.received[0]!.event;
    expect(dead['knativeerrorcode']).toBe('503');
    expect(Buffer.from(String(dead['knativeerrordata']), 'base64').toString()).toBe('x'.repeat(1024));
  });

  test('without a dead-letter sink a failed event is dropped and recorded', async () => {
    const sub = await subscriber(() => ({ status: 422 }));
    const b = await broker({ triggers: [trigger('t', { subscriber: { uri: `${sub.url}/` }, delivery: { retry: 2 } })] });
    await b.send(event());
    await b.idle(5000);
    expect(b.records).toHaveLength(1);
    expect(b.records[0]).toMatchObject({ status: 422, outcome: 'dropped', reason: 'delivery failed and no deadLetterSink is configured' });
  });

  test('a trigger delivery spec overrides the broker default', async () => {
    const sub = await subscriber(() => ({ status: 503 }));
    const b = await broker({
      triggers: [
        trigger('own', { subscriber: { uri: `${sub.url}/own` }, delivery: { retry: 1, backoffDelay: 'PT0.001S' } }),
        trigger('default', { subscriber: { uri: `${sub.url}/default` } }),
      ],
      brokerDelivery: { retry: 3, backoffDelay: 'PT0.001S' },
    });
    await b.send(event());
    await b.idle(5000);
    expect(sub.byPath('/own')).toHaveLength(2);
    expect(sub.byPath('/default')).toHaveLength(4);
  });

  test('a slow subscriber times out per attempt, is retried, then dead-lettered with no response code', async () => {
    const sub = await subscriber(() => 'hang');
    const dls = await subscriber();
    const b = await broker({
      triggers: [trigger('t', { subscriber: { uri: `${sub.url}/` }, delivery: { retry: 1, timeout: 'PT0.15S', backoffDelay: 'PT0.01S', deadLetterSink: { uri: dls.url } } })],
    });
    const started = Date.now();
    await b.send(event());
    await b.idle(5000);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(1500);
    expect(b.records.map((r) => [r.outcome, r.error])).toEqual([
      ['retry', 'timeout after 150 ms'],
      ['dead-lettered', 'timeout after 150 ms'],
    ]);
    expect(b.records.every((r) => r.ms >= 140 && r.ms < 1000)).toBe(true);
    expect(dls.received[0]!.event['knativeerrorcode']).toBe('-1');
  });

  test('transport errors are retried', async () => {
    const gone = await subscriber();
    const url = gone.url;
    await gone.close();
    const b = await broker({ triggers: [trigger('t', { subscriber: { uri: `${url}/` }, delivery: { retry: 2, backoffDelay: 'PT0.001S' } })] });
    await b.send(event());
    await b.idle(5000);
    expect(b.records.map((r) => r.outcome)).toEqual(['retry', 'retry', 'dropped']);
    expect(b.records[0]!.error).toMatch(/ECONNREFUSED/);
  });

  test('an unresolvable subscriber ref is dropped and recorded', async () => {
    const b = await broker({ triggers: [trigger('t', { subscriber: { ref: { kind: 'Service', name: 'missing' } } })] });
    await b.send(event());
    await b.idle(5000);
    expect(b.records).toEqual([expect.objectContaining({ outcome: 'dropped', reason: 'subscriber could not be resolved', subscriber: '' })]);
  });

  test('a subscriber ref with a relative uri resolves against the ref URL', async () => {
    const sub = await subscriber();
    const b = await broker({
      triggers: [trigger('t', { subscriber: { ref: { apiVersion: 'v1', kind: 'Service', name: 'fn' }, uri: '/hook' } })],
      resolve: () => `${sub.url}/`,
    });
    await b.send(event());
    await b.idle(5000);
    expect(sub.received.map((r) => r.path)).toEqual(['/hook']);
  });
});

describe('replies', () => {
  test('a CloudEvent reply re-enters the broker and is routed by its own triggers', async () => {
    const sub = await subscriber((r) => {
      if (r.path === '/start') {
        const reply = HTTP.binary(new CloudEvent({ id: 'reply-1', type: 'dev.mlops.training.started.v1', source: '/model-lifecycle/start-training', model: 'm1', data: { run: 'r1' } }));
        return { status: 200, headers: Object.fromEntries(Object.entries(reply.headers).map(([k, v]) => [k, String(v)])), body: String(reply.body) };
      }
      if (r.path === '/track') {
        const reply = HTTP.structured(new CloudEvent({ id: 'reply-2', type: 'dev.mlops.training.succeeded.v1', source: '/model-lifecycle/track-training' }));
        return { status: 200, headers: { 'content-type': String(reply.headers['content-type']) }, body: String(reply.body) };
      }
      return { status: 204 };
    });
    const b = await broker({
      triggers: [
        trigger('start', { subscriber: { uri: `${sub.url}/start` }, filter: { attributes: { type: 'dev.mlops.training.requested.v1' } } }),
        trigger('track', { subscriber: { uri: `${sub.url}/track` }, filter: { attributes: { type: 'dev.mlops.training.started.v1', model: 'm1' } } }),
        trigger('done', { subscriber: { uri: `${sub.url}/done` }, filter: { attributes: { type: 'dev.mlops.training.succeeded.v1' } } }),
      ],
    });
    await b.send(event({ id: 'req-1' }));
    await b.idle(5000);
    expect(sub.received.map((r) => [r.path, r.event.id])).toEqual([
      ['/start', 'req-1'],
      ['/track', 'reply-1'],
      ['/done', 'reply-2'],
    ]);
    expect(sub.byPath('/track')[0]!.event.data).toEqual({ run: 'r1' });
    expect(b.records.map((r) => [r.trigger, r.eventId, r.outcome, r.reply?.id])).toEqual([
      ['start', 'req-1', 'delivered', 'reply-1'],
      ['track', 'reply-1', 'delivered', 'reply-2'],
      ['done', 'reply-2', 'delivered', undefined],
    ]);
    const timeline = formatTimeline(b.records).split('\n');
    expect(timeline).toHaveLength(3);
    expect(timeline[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} dev\.mlops\.training\.requested\.v1 \(req-1\) → start http:\/\/127\.0\.0\.1:\d+\/start #1 200 delivered \d+ms — reply dev\.mlops\.training\.started\.v1 \(reply-1\)$/);
  });

  test('a 2xx reply that is not a CloudEvent is success with a warning', async () => {
    const sub = await subscriber(() => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' }));
    const b = await broker({ triggers: [trigger('t', { subscriber: { uri: `${sub.url}/` }, delivery: { retry: 3 } })] });
    await b.send(event());
    await b.idle(5000);
    expect(sub.received).toHaveLength(1);
    expect(b.records).toEqual([expect.objectContaining({ outcome: 'delivered', status: 200, warning: expect.stringMatching(/not a CloudEvent/) })]);
  });

  test('replies loop until the TTL is exhausted, then the reply is dropped and recorded', async () => {
    let n = 0;
    const sub = await subscriber(() => {
      const reply = HTTP.binary(new CloudEvent({ id: `loop-${++n}`, type: 'loop', source: '/loop' }));
      return { status: 200, headers: Object.fromEntries(Object.entries(reply.headers).map(([k, v]) => [k, String(v)])), body: '' };
    });
    const b = await broker({ triggers: [trigger('loop', { subscriber: { uri: `${sub.url}/` }, filter: { attributes: { type: 'loop' } } })], ttl: 3 });
    await b.send(new CloudEvent({ id: 'loop-0', type: 'loop', source: '/loop' }));
    await b.idle(5000);
    expect(sub.received.map((r) => r.event.id)).toEqual(['loop-0', 'loop-1', 'loop-2']);
    expect(b.records.map((r) => [r.eventId, r.outcome])).toEqual([
      ['loop-0', 'delivered'],
      ['loop-1', 'delivered'],
      ['loop-2', 'delivered'],
      ['loop-3', 'dropped'],
    ]);
    expect(b.records[3]!.reason).toBe('knativebrokerttl exhausted');
  });

  test('an incoming event whose TTL is already 0 is dropped', async () => {
    const sub = await subscriber();
    const b = await broker({ triggers: [trigger('t', { subscriber: { uri: `${sub.url}/` } })] });
    await b.send(new CloudEvent({ id: 'dead', type: 'x', source: '/x', knativebrokerttl: 0 }));
    await b.idle(5000);
    expect(sub.received).toHaveLength(0);
    expect(b.records).toEqual([expect.objectContaining({ eventId: 'dead', outcome: 'dropped', trigger: '' })]);
  });
});

describe('idle and close', () => {
  test('idle() waits for pending retries; it rejects when deliveries are still pending at its timeout', async () => {
    const sub = await subscriber((_r, nth) => (nth === 1 ? { status: 503 } : nth === 2 ? { status: 200 } : 'hang'));
    const b = await broker({ triggers: [trigger('t', { subscriber: { uri: `${sub.url}/` }, delivery: { retry: 1, backoffPolicy: 'linear', backoffDelay: 'PT0.2S' } })] });
    await b.idle(10);
    await b.send(event());
    const started = Date.now();
    await b.idle(5000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(195);
    expect(b.records.map((r) => r.outcome)).toEqual(['retry', 'delivered']);
    await b.send(event());
    await expect(b.idle(100)).rejects.toThrow(/not idle after 100 ms \(1 deliveries pending\)/);
    await b.close(); // aborts the hanging delivery
    expect(b.records.at(-1)).toMatchObject({ outcome: 'dropped', reason: 'broker closed' });
  });
});

test('ISO-8601 durations', () => {
  expect(parseIsoDuration('PT0.2S')).toBe(200);
  expect(parseIsoDuration('PT5M')).toBe(300_000);
  expect(parseIsoDuration('P1DT1H1M1.5S')).toBe(86_400_000 + 3_600_000 + 60_000 + 1500);
  expect(() => parseIsoDuration('PT')).toThrow(/invalid ISO-8601 duration/);
  expect(() => parseIsoDuration('5s')).toThrow(/invalid ISO-8601 duration/);
});
