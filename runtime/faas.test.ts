// Steps on faas-js-runtime, in real processes: `mlops serve <step>` (the container's code path) and test-only
// steps served by the same adapter in a child (test/faas-child.ts). Status codes, JSON bodies, the runtime's
// /metrics, health, crash exit code and the SIGTERM drain are all observed from outside the process.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CloudEvent, HTTP } from 'cloudevents';
import { deadUrl } from '../test/intake-kit.ts';

const TOKEN = 'faas-test-token-0123456789';

interface Child {
  proc: ChildProcessWithoutNullStreams;
  url: string;
  out: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor: (pattern: RegExp) => Promise<void>;
}

async function start(args: string[], env: Record<string, string>): Promise<Child> {
  const proc = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', NAMESPACE: 'faas-test', LOG_LEVEL: 'info', ...env },
  });
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (chunk: Buffer): void => { out += chunk.toString('utf8'); for (const w of waiters.splice(0)) w(); };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => { resolve({ code, signal }); for (const w of waiters.splice(0)) w(); });
  });
  const waitFor = async (pattern: RegExp): Promise<void> => {
    const deadline = Date.now() + 30_000;
    while (!pattern.test(out)) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`no ${String(pattern)} in output:\n${out}`);
      await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 200); });
    }
  };
  await waitFor(/serving \S+ on http:\/\/\S+/);
  const url = /serving \S+ on (http:\/\/\S+)/.exec(out)?.[1] ?? '';
  return { proc, url, out: () => out, exited, waitFor };
}

async function stop(child: Child): Promise<void> {
  if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
  await child.exited;
}

const json = async (res: Response): Promise<{ status: number; type: string | null; body: unknown }> =>
  ({ status: res.status, type: res.headers.get('content-type'), body: await res.json() });

function binary(data: unknown, id: string): { headers: Record<string, string>; body: string } {
  const m = HTTP.binary(new CloudEvent({ type: 'dev.mlops.test.v1', source: '/faas-test', id, data }));
  return { headers: m.headers as Record<string, string>, body: m.body as string };
}

// Upstream Alertmanager v4 webhook (events/fixtures/alertmanager/good-firing.json) naming catalog models.
const firing = readFileSync('events/fixtures/alertmanager/good-firing.json', 'utf8');
const unknownModel = firing.replaceAll('"model": "anomaly-detector"', '"model": "no-such-model"').replaceAll('"model": "predictive-analytics"', '"model": "no-such-model-2"');

describe('mlops serve drift-intake (faas-js-runtime)', () => {
  let child: Child;
  beforeAll(async () => {
    // The broker is down, so an accepted webhook is a 503 the sender retries.
    child = await start(['bin/mlops.js', 'serve', 'drift-intake', '--port', '0'], { DRIFT_INTAKE_TOKEN: TOKEN, K_SINK: await deadUrl() });
  });
  afterAll(async () => { await stop(child); });

  const post = (body: string, auth = true): Promise<Response> => fetch(child.url, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${TOKEN}` } : {}) },
  });

  test('401, 400, 422 and 503 with JSON bodies naming the error kind', async () => {
    const type = 'application/json; charset=utf-8';
    expect(await json(await post(firing, false))).toEqual({ status: 401, type, body: { error: 'missing or wrong bearer token', kind: 'auth' } });
    // Authentication comes before parsing, even for bytes the runtime's JSON parser would refuse.
    expect(await json(await post('{not json', false))).toMatchObject({ status: 401, type, body: { kind: 'auth' } });
    expect(await json(await post('{not json'))).toEqual({ status: 400, type, body: { error: 'body is not valid JSON', kind: 'invalid' } });
    expect(await json(await post(''))).toMatchObject({ status: 400, type, body: { kind: 'invalid' } });
    expect(await json(await post(unknownModel))).toMatchObject({ status: 422, type, body: { kind: 'permanent', error: expect.stringMatching(/^no firing alert names an enabled catalog model/) as unknown } });
    expect(await json(await post(firing))).toMatchObject({ status: 503, type, body: { kind: 'retryable', error: expect.stringMatching(/^broker did not take 2 of 2 events/) as unknown } });
  });

  test("the runtime's /metrics counts invocations under the step's name; health endpoints answer", async () => {
    expect((await fetch(`${child.url}/health/readiness`)).status).toBe(200);
    expect((await fetch(`${child.url}/health/liveness`)).status).toBe(200);
    await post(firing, false);
    const text = await (await fetch(`${child.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('faas_invocations{'));
    expect(line).toMatch(/^faas_invocations\{faas_name="drift-intake",faas_id="[^"]+",faas_instance="[^"]+",faas_version="local",faas_runtime="Node.js"\} [1-9]\d*$/);
    expect(text).toContain('# TYPE faas_execution_latency histogram');
  });
});

describe('a CloudEvent step in its own process', () => {
  test('an uncaught exception is logged and exits 1 (the runtime alone would exit 0)', async () => {
    const child = await start(['test/faas-child.ts', 'crash'], {});
    try {
      const m = binary({}, 'c1');
      await fetch(child.url, { method: 'POST', headers: m.headers, body: m.body }).catch(() => undefined);
      expect(await child.exited).toEqual({ code: 1, signal: null });
      expect(child.out()).toMatch(/"level":"fatal".*"origin":"uncaughtException".*"msg":"uncaught exception: exiting"/);
      expect(child.out()).toContain('boom outside any handler');
    } finally { await stop(child); }
  });

  test('SIGTERM mid-handler: not ready, new work 503, the in-flight answer arrives, then exit 0', async () => {
    const child = await start(['test/faas-child.ts', 'slow'], {});
    try {
      const m = binary({ ms: 1500 }, 'slow-1');
      const inFlight = fetch(child.url, { method: 'POST', headers: m.headers, body: m.body }).then(json);
      await child.waitFor(/started slow-1/);
      child.proc.kill('SIGTERM');
      await child.waitFor(/shutting down: waiting for in-flight handlers/);
      expect((await fetch(`${child.url}/health/readiness`)).status).toBe(503);
      expect((await fetch(`${child.url}/health/liveness`)).status).toBe(200);
      const late = binary({ ms: 0 }, 'late');
      expect(await json(await fetch(child.url, { method: 'POST', headers: late.headers, body: late.body })))
        .toEqual({ status: 503, type: 'application/json; charset=utf-8', body: { error: 'shutting down; deliver again', kind: 'retryable' } });
      expect(await inFlight).toEqual({ status: 200, type: 'application/json; charset=utf-8', body: { finished: 'slow-1' } });
      expect(await child.exited).toEqual({ code: 0, signal: null });
      expect(child.out()).not.toContain('late\n');
    } finally { await stop(child); }
  });

  test('the drain is bounded by SHUTDOWN_GRACE_SECONDS', async () => {
    const child = await start(['test/faas-child.ts', 'slow'], { SHUTDOWN_GRACE_SECONDS: '0.5' });
    try {
      const m = binary({ ms: 20_000 }, 'stuck');
      const inFlight = fetch(child.url, { method: 'POST', headers: m.headers, body: m.body }).then((r) => `answered ${r.status}`, (e: unknown) => String(e));
      await child.waitFor(/started stuck/);
      const t0 = Date.now();
      child.proc.kill('SIGTERM');
      expect(await child.exited).toEqual({ code: 0, signal: null });
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(child.out()).toMatch(/shutdown grace elapsed with handlers still running/);
      // The process exited with the handler still running: the connection closes without an answer.
      expect(await inFlight).toMatch(/^TypeError: fetch failed/);
    } finally { await stop(child); }
  });

  test("input the runtime refuses before the step runs: not a CloudEvent → our 400; an invalid one → the runtime's 500, but its dead letter gets through", async () => {
    const child = await start(['test/faas-child.ts', 'slow'], {});
    try {
      expect(await json(await fetch(child.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })))
        .toEqual({ status: 400, type: 'application/json; charset=utf-8', body: { error: 'not a CloudEvent: POST one in binary or structured mode', kind: 'invalid' } });
      // Parses as a binary-mode CloudEvent but fails validation (a source is required): the runtime answers
      // 500 itself, so the broker retries and then dead-letters it (docs/runtime.md).
      const res = await fetch(child.url, { method: 'POST', headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': 'bad-1', 'ce-type': 't', 'ce-source': '' }, body: '{}' });
      expect(res.status).toBe(500);
      expect(child.out()).not.toContain('started bad-1');
      // The same event dead-lettered by the Broker (knativeerror* extensions) reaches the step, so the
      // dead-letter sink (notify) can report it.
      const dead = await fetch(child.url, { method: 'POST', body: '{}', headers: {
        'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': 'bad-1', 'ce-type': 't', 'ce-source': '',
        'ce-knativeerrorcode': '500', 'ce-knativeerrordest': 'http://gate-health.ns.svc.cluster.local',
      } });
      expect(await json(dead)).toEqual({ status: 200, type: 'application/json; charset=utf-8', body: { finished: 'bad-1' } });
      // A data-less event (the SDK still labels it application/json) is handled, not refused by the parser.
      const empty = HTTP.binary(new CloudEvent({ type: 'dev.mlops.test.v1', source: '/faas-test', id: 'empty-1' }));
      expect((await fetch(child.url, { method: 'POST', headers: empty.headers as Record<string, string> })).status).toBe(200);
    } finally { await stop(child); }
  });
});
