// Test helpers for the webhook intakes (drift-intake, git-intake): a recording broker stand-in, a Kubernetes
// port that must not be used, and the bad-input corpus under test/corpus/. Not loaded by the function.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { HTTP, type CloudEvent } from 'cloudevents';
import type { KubePort } from '../runtime/kube.ts';

export interface RecordingSink {
  url: string;
  events: CloudEvent<unknown>[];
  /** Status the sink answers with (202 by default; 500 to make it fail). */
  status: number;
  /** Delay before answering, and the most requests seen in flight at once. */
  delayMs: number;
  maxInFlight: number;
  close(): Promise<void>;
}

/** A real HTTP server standing in for the broker: records every CloudEvent it is sent. */
export async function startRecordingSink(): Promise<RecordingSink> {
  const sink: RecordingSink = { url: '', events: [], status: 202, delayMs: 0, maxInFlight: 0, close: () => Promise.resolve() };
  let inFlight = 0;
  const server: Server = createServer((req, res) => {
    inFlight += 1;
    sink.maxInFlight = Math.max(sink.maxInFlight, inFlight);
    void readAll(req).then(async (body) => {
      if (sink.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, sink.delayMs));
      inFlight -= 1;
      if (sink.status < 300) {
        const parsed = HTTP.toEvent({ headers: req.headers, body: body.toString('utf8') });
        for (const event of Array.isArray(parsed) ? parsed : [parsed]) sink.events.push(event as CloudEvent<unknown>);
      }
      res.writeHead(sink.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  sink.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  sink.close = () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  return sink;
}

/** A URL where nothing listens (a port taken and released). */
export async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** The intakes never touch the cluster: any call fails the test loudly. */
export function unusedKube(): KubePort {
  return new Proxy({ namespace: 'default' } as KubePort, {
    get(target, prop) {
      if (prop === 'namespace' || prop === 'then') return (target as unknown as Record<PropertyKey, unknown>)[prop];
      return () => { throw new Error(`intake must not call kube.${String(prop)}`); };
    },
  });
}

export interface CorpusEntry {
  name: string;
  why: string;
  auth: string;
  headers: Record<string, string>;
  body?: string;
  json?: unknown;
  repeat?: { path: string[]; count: number };
  expectStatus: number;
}

export function loadCorpus(file: string): CorpusEntry[] {
  return (JSON.parse(readFileSync(file, 'utf8')) as { entries: CorpusEntry[] }).entries;
}

/** The exact request body of a corpus entry (`json` after `repeat`, or raw `body`). */
export function corpusBody(entry: CorpusEntry): string {
  if (entry.body !== undefined) return entry.body;
  const value = structuredClone(entry.json);
  if (entry.repeat) {
    let holder: unknown = value;
    for (const key of entry.repeat.path) holder = (holder as Record<string, unknown>)[key];
    const list = holder as unknown[];
    const first = list[0];
    while (list.length < entry.repeat.count) list.push(structuredClone(first));
  }
  return JSON.stringify(value);
}

export async function post(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: parsed };
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
