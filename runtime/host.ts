import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { HTTP, type CloudEvent } from 'cloudevents';
import { invalid, toLifecycleError } from './errors.ts';
import type { Logger } from './logger.ts';
import { metrics, registry } from './metrics.ts';
import type { HttpRequest, StepDeps, StepDefinition, StepInput, StepReply } from './step.ts';

// Our own start-up code for a function (faas-js-runtime maps port 0 to 8080 and exits on EADDRINUSE):
// node:http, the CloudEvents SDK, health and metrics endpoints, and the one place where errors become
// HTTP statuses. A raw error never escapes.

export interface RunningStep {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

export async function serveStep(step: StepDefinition, deps: StepDeps, opts: { port?: number; host?: string } = {}): Promise<RunningStep> {
  const handler = createStepHandler(step, deps);
  const server = createServer((req, res) => { void handler(req, res); });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    server,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

export function createStepHandler(step: StepDefinition, deps: StepDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'GET' && (path === '/health/readiness' || path === '/health/liveness')) return send(res, 200, 'text/plain', 'OK');
    if (req.method === 'GET' && path === '/metrics') {
      return send(res, 200, registry.contentType, await registry.metrics());
    }
    const started = performance.now();
    let type = 'http';
    let log: Logger = deps.logger;
    try {
      if (req.method !== 'POST') throw invalid(`method ${req.method ?? '?'} not allowed; POST an event`);
      const rawBody = await readBody(req, deps.settings.maxBodyBytes);
      const headers = flattenHeaders(req);
      let input: StepInput;
      if (step.input === 'cloudevent') {
        const event = toCloudEvent(headers, rawBody);
        type = event.type;
        log = deps.logger.child(eventLogFields(event));
        input = { kind: 'event', event };
      } else {
        const request: HttpRequest = { method: req.method, path, headers, rawBody };
        input = { kind: 'http', request };
      }
      const reply = await step.handle(input, { ...deps, logger: log });
      const status = writeReply(res, reply);
      metrics.events.inc({ step: step.name, type, status: String(status) });
      log.info({ status, ms: Math.round(performance.now() - started), reply: reply.kind === 'event' ? reply.event.type : reply.kind }, 'handled');
    } catch (err) {
      const e = toLifecycleError(err);
      metrics.events.inc({ step: step.name, type, status: String(e.code) });
      const level = e.kind === 'retryable' ? 'warn' : 'info';
      log[level]({ status: e.code, kind: e.kind, err: e.message, ms: Math.round(performance.now() - started) }, 'refused');
      if (!res.headersSent) send(res, e.code, 'application/json', JSON.stringify({ error: e.message, kind: e.kind }));
    } finally {
      metrics.eventDuration.observe({ step: step.name }, (performance.now() - started) / 1000);
    }
  };
}

export function eventLogFields(event: CloudEvent<unknown>): Record<string, unknown> {
  const ext = event as unknown as Record<string, unknown>;
  return { ceId: event.id, ceType: event.type, ceSource: event.source, model: ext.model, run: ext.run };
}

function toCloudEvent(headers: Readonly<Record<string, string | undefined>>, rawBody: Buffer): CloudEvent<unknown> {
  try {
    const parsed = HTTP.toEvent({ headers: headers, body: rawBody.toString('utf8') });
    const event = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!event) throw new Error('empty batch');
    return event as CloudEvent<unknown>;
  } catch (err) {
    throw invalid(`not a CloudEvent: ${(err as Error).message}`);
  }
}

function writeReply(res: ServerResponse, reply: StepReply): number {
  switch (reply.kind) {
    case 'empty':
      res.writeHead(204).end();
      return 204;
    case 'json':
      send(res, reply.status, 'application/json', JSON.stringify(reply.body));
      return reply.status;
    case 'event': {
      const message = HTTP.binary(reply.event);
      const body = typeof message.body === 'string' ? message.body : JSON.stringify(message.body ?? null);
      res.writeHead(200, message.headers as Record<string, string>).end(body);
      return 200;
    }
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) }).end(body);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw invalid(`body of ${declared} bytes exceeds the ${limit}-byte limit`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw invalid(`body exceeds the ${limit}-byte limit`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

function flattenHeaders(req: IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}
