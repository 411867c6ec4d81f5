// Test helpers: a real HTTP CloudEvent subscriber on 127.0.0.1:0 whose answers a test scripts.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CloudEvent } from 'cloudevents';
import { parseCloudEvent } from './index.ts';

export type Received = { path: string; at: number; event: CloudEvent<unknown>; headers: http.IncomingHttpHeaders };
export type Answer = { status: number; headers?: Record<string, string>; body?: string | Buffer } | 'hang';
export type Script = (r: Received, nth: number) => Answer | Promise<Answer>;

export type Subscriber = { url: string; received: Received[]; byPath(path: string): Received[]; close(): Promise<void> };

export async function startSubscriber(script: Script = () => ({ status: 202 })): Promise<Subscriber> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let event: CloudEvent<unknown>;
      try {
        event = parseCloudEvent(req.headers, Buffer.concat(chunks));
      } catch (err) {
        res.writeHead(400).end((err as Error).message);
        return;
      }
      const r: Received = { path: req.url ?? '/', at: Date.now(), event, headers: req.headers };
      received.push(r);
      void Promise.resolve(script(r, received.filter((x) => x.path === r.path).length)).then((answer) => {
        if (answer === 'hang') return;
        res.writeHead(answer.status, answer.headers ?? {});
        res.end(answer.body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    byPath: (path) => received.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A Trigger manifest for the default broker. */
export function trigger(name: string, spec: Record<string, unknown>): object {
  return { apiVersion: 'eventing.knative.dev/v1', kind: 'Trigger', metadata: { name, namespace: 'default' }, spec: { broker: 'default', ...spec } };
}

/** Gaps in ms between consecutive timestamps. */
export function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - (times[i] as number));
}
