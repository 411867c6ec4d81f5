import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CloudEvent, HTTP } from 'cloudevents';
import faasRuntime from 'faas-js-runtime';
import { createDeps } from './deps.ts';
import { errorReply, invalid, retryable, toLifecycleError, type ErrorReply } from './errors.ts';
import type { Logger } from './logger.ts';
import { loadSettings, type Settings } from './settings.ts';
import type { StepDefinition, StepDeps, StepInput, StepReply } from './step.ts';

// The one adapter between a StepDefinition and faas-js-runtime (Knative Functions' Node runtime): it turns
// a step into the runtime's module shape and starts it with the runtime's programmatic start(). It also
// covers the runtime's known gaps, each described in docs/runtime.md.

/** GitHub caps webhook payloads at 25 MB (docs.github.com, "Webhook events and payloads"). */
export const INTAKE_BODY_LIMIT = 25 * 1024 * 1024;

/**
 * faas-js-runtime reads `func.yaml` from the `config` location (the working directory when unset) and lets
 * it override start()'s options, including `name` (the `faas_name` label) and the body limit. The repository
 * root has the project's func.yaml, so point the runtime at this module's own folder, which has none.
 */
const CONFIG_DIR = fileURLToPath(new URL('.', import.meta.url));

/** The subset of the runtime's invocation context the adapter reads (faas-js-runtime lib/context.js). */
export interface FaasContext {
  method: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Present when the runtime parsed and validated a CloudEvent (lib/event-handler.js). */
  cloudevent?: CloudEvent<unknown>;
  /** The body as UTF-8 text when started with `includeRaw` (fastify-raw-body). */
  rawBody?: string;
  body?: unknown;
}

/** A fastify reply, as the runtime passes it to liveness/readiness (lib/health-check.js). */
interface HealthReply {
  code(status: number): HealthReply;
  header(name: string, value: string): HealthReply;
  send(body: string): unknown;
}

export type FaasReply = ErrorReply | { statusCode: number; headers: Record<string, string>; body: string } | undefined;

/** The runtime's module shape (faas-js-runtime lib/types.d.ts `Function`). */
export interface FaasModule {
  handle: (context: FaasContext, body?: unknown) => Promise<FaasReply>;
  init: () => void;
  shutdown: () => Promise<void>;
  liveness: (request: unknown, reply: HealthReply) => unknown;
  readiness: (request: unknown, reply: HealthReply) => unknown;
}

/**
 * The runtime module for a step. Without `deps`, `init` reads the settings from the environment once and
 * builds the ports (the container path); with them (tests, `mlops dev`), init keeps what it was given.
 */
export function faasModule(step: StepDefinition, given?: StepDeps, opts: { guarded?: boolean } = {}): FaasModule {
  let deps = given;
  let inFlight = 0;
  let draining: Promise<void> | undefined;
  const idleWaiters: Array<() => void> = [];
  const ready = (): StepDeps => {
    deps ??= createDeps(loadSettings({ ...process.env, FUNCTION: step.name }));
    return deps;
  };

  async function drain(): Promise<void> {
    const d = ready();
    if (inFlight > 0) {
      d.logger.info({ inFlight, graceMs: d.settings.shutdownGraceMs }, 'shutting down: waiting for in-flight handlers');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => { idleWaiters.push(resolve); }),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, d.settings.shutdownGraceMs); }),
      ]);
      clearTimeout(timer);
      if (inFlight > 0) d.logger.warn({ inFlight }, 'shutdown grace elapsed with handlers still running');
    }
    // The runtime writes a reply a few microtasks after handle() resolves; let it reach the socket before
    // the runtime's signal handler calls process.exit.
    await new Promise<void>((resolve) => setTimeout(resolve, 20));
  }

  const health = (ok: () => boolean) => (_request: unknown, reply: HealthReply): unknown =>
    ok() ? reply.code(200).header('content-type', 'text/plain; charset=utf-8').send('OK')
      : reply.code(503).header('content-type', 'text/plain; charset=utf-8').send('shutting down');

  return {
    init: (): void => { ready(); },
    shutdown: (): Promise<void> => {
      draining ??= drain();
      return draining;
    },
    liveness: health(() => true),
    // Not ready once draining, so nothing new is routed here (Knative's queue-proxy also stops first).
    readiness: health(() => draining === undefined),
    handle: async (context, body): Promise<FaasReply> => {
      const d = ready();
      if (draining) return errorReply(retryable('shutting down; deliver again'));
      inFlight += 1;
      const started = performance.now();
      let log: Logger = d.logger;
      try {
        const input = toInput(step, context, body, opts.guarded ?? false);
        if (input.kind === 'event') log = d.logger.child(eventLogFields(input.event));
        const out = await step.handle(input, { ...d, logger: log });
        const wire = toWire(out);
        log.info({ status: wire === undefined ? 204 : wire.statusCode, ms: Math.round(performance.now() - started), reply: out.kind === 'event' ? out.event.type : out.kind }, 'handled');
        return wire;
      } catch (err) {
        const e = toLifecycleError(err);
        log[e.kind === 'retryable' ? 'warn' : 'info']({ status: e.code, kind: e.kind, err: e.message, ms: Math.round(performance.now() - started) }, 'refused');
        return errorReply(e);
      } finally {
        inFlight -= 1;
        if (inFlight === 0) for (const wake of idleWaiters.splice(0)) wake();
      }
    },
  };
}

export function eventLogFields(event: CloudEvent<unknown>): Record<string, unknown> {
  const ext = event as unknown as Record<string, unknown>;
  return { ceId: event.id, ceType: event.type, ceSource: event.source, model: ext.model, run: ext.run };
}

function toInput(step: StepDefinition, context: FaasContext, body: unknown, guarded: boolean): StepInput {
  if (context.method !== 'POST') throw invalid(`method ${context.method} not allowed; POST an event`);
  const headers = flattenHeaders(context.headers);
  // Only guardRequests (serveStep) shields, and it drops any shield header a sender made up.
  const shielded = guarded && Object.keys(headers).some((name) => name.startsWith(SHIELD_PREFIX));
  if (shielded) unshield(headers);
  if (step.input === 'cloudevent' && shielded) return { kind: 'event', event: lenientEvent(headers, rawBodyOf(context, body)) };
  if (step.input === 'cloudevent') {
    if (!context.cloudevent) throw invalid('not a CloudEvent: POST one in binary or structured mode');
    // The runtime parses with its own copy of the CloudEvents SDK; rebuild it with ours so every step sees
    // one class (the runtime already validated it).
    const attributes = Object.entries(context.cloudevent as unknown as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return { kind: 'event', event: new CloudEvent<unknown>(Object.fromEntries(attributes), false) };
  }
  return { kind: 'http', request: { method: context.method, path: '/', headers, rawBody: rawBodyOf(context, body) } };
}

/** The exact bytes for HMAC checks: the runtime's buffer parser's, else includeRaw's UTF-8 text. */
function rawBodyOf(context: FaasContext, body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (typeof context.rawBody === 'string') return Buffer.from(context.rawBody, 'utf8');
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.alloc(0);
}

function toWire(out: StepReply): FaasReply {
  switch (out.kind) {
    case 'empty': return undefined;
    case 'event': {
      // Binary mode with our own SDK. Returning the CloudEvent would leave the encoding to the runtime, which
      // recognises one by `instanceof` its own SDK copy or a constructor named `CloudEvent`: neither holds for
      // our SDK's class in a minified bundle, and the event would go out as a plain JSON object.
      const message = HTTP.binary(out.event);
      const body = message.body === undefined ? '' : typeof message.body === 'string' ? message.body : JSON.stringify(message.body);
      return { statusCode: 200, headers: message.headers as Record<string, string>, body };
    }
    case 'json': return { statusCode: out.status, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(out.body) };
  }
}

function flattenHeaders(headers: FaasContext['headers']): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** The options the step is started with; `config` keeps a stray func.yaml from overriding them. */
export function startOptions(step: StepDefinition, settings: Settings, port: number): Record<string, unknown> {
  const quiet = ['fatal', 'error', 'silent'].includes(settings.logLevel);
  return {
    config: CONFIG_DIR,
    name: step.name,
    // faas_instance and faas_id: the runtime reads POD_NAME, which Knative does not set; a pod's hostname is its name.
    instance: instance(),
    id: `${instance()}-${randomUUID()}`,
    version: process.env.K_REVISION ?? 'local',
    // A string: the runtime replaces a numeric 0 with 8080, '0' asks the OS for a free port.
    port: String(port),
    // The runtime's own request log at `info` would repeat ours; keep it to warnings unless asked for less.
    logLevel: quiet ? settings.logLevel : 'warn',
    includeRaw: step.input === 'http',
    bodyLimit: step.input === 'http' ? Math.max(settings.maxBodyBytes, INTAKE_BODY_LIMIT) : settings.maxBodyBytes,
  };
}

const instance = (): string => process.env.POD_NAME ?? hostname();

export interface RunningStep {
  url: string;
  port: number;
  server: Server;
  /** Drain in-flight handlers (bounded by the shutdown grace), then close every connection. */
  close(): Promise<void>;
}

/**
 * Requests the runtime must not parse. Webhook intakes authenticate before they parse (a bad token on garbage
 * is 401, not 400), but the runtime parses first: `application/json` goes through fastify's JSON parser (400
 * with its own body for bad JSON, an empty body or a `__proto__` key), and `ce-*` headers through the
 * CloudEvents SDK (500 when invalid). Dead letters (isDeadLetter) must reach the sink even when invalid. For
 * those the server hands the runtime `application/octet-stream` (its catch-all parser keeps the exact bytes
 * as a Buffer) with the original content-type and `ce-*` headers moved aside; the adapter puts them back.
 */
const SHIELD_PREFIX = 'x-mlops-shielded-';
const shieldable = (name: string): boolean => name === 'content-type' || name.startsWith('ce-');

function guardRequests(server: Server, intake: boolean): void {
  const listeners = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    for (const name of Object.keys(req.headers)) {
      if (name.startsWith(SHIELD_PREFIX)) delete req.headers[name];
    }
    if (intake || isDeadLetter(req)) shield(req);
    // fastify refuses an empty body labelled application/json (400 before the step runs); the CloudEvents SDK
    // labels a data-less event that way. An empty body has no media type, so drop the label.
    else if (req.headers['content-length'] === '0') delete req.headers['content-type'];
    for (const l of listeners) l(req, res);
  });
}

function shield(req: IncomingMessage): void {
  req.headers[`${SHIELD_PREFIX}request`] = '1';
  for (const name of Object.keys(req.headers)) {
    if (!shieldable(name)) continue;
    req.headers[SHIELD_PREFIX + name] = req.headers[name];
    delete req.headers[name];
  }
  if (req.method === 'POST') req.headers['content-type'] = 'application/octet-stream';
}

/**
 * A dead letter: the Broker's dispatcher delivers it to the dead-letter sink (notify) in binary mode with the
 * knativeerror* extensions (Knative Eventing docs, "Dead letter sink extensions"). It may be the very event a
 * function's runtime refused as malformed, and the sink's runtime would refuse it again and lose the report,
 * so it skips the runtime's parsers and is rebuilt without validation (lenientEvent).
 */
function isDeadLetter(req: IncomingMessage): boolean {
  return req.headers['ce-knativeerrorcode'] !== undefined || req.headers['ce-knativeerrordest'] !== undefined;
}

/** The CloudEvent as sent, valid or not: the SDK's parse when it succeeds, else the attributes it can name. */
function lenientEvent(headers: Record<string, string | undefined>, raw: Buffer): CloudEvent<unknown> {
  const text = raw.toString('utf8');
  try {
    const parsed = HTTP.toEvent({ headers, body: text });
    if (!Array.isArray(parsed)) return parsed as CloudEvent<unknown>;
  } catch { /* malformed: fall through */ }
  const attributes: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    const attr = name.slice(3);
    if (name.startsWith('ce-') && value !== undefined && /^[a-z0-9]{1,20}$/.test(attr)) attributes[attr] = value;
  }
  return new CloudEvent<unknown>({ ...attributes, ...(text ? { data: text } : {}) }, false);
}

function unshield(headers: Record<string, string | undefined>): void {
  delete headers[`${SHIELD_PREFIX}request`];
  for (const name of Object.keys(headers)) {
    if (shieldable(name)) delete headers[name];
  }
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(SHIELD_PREFIX)) continue;
    headers[name.slice(SHIELD_PREFIX.length)] = value;
    delete headers[name];
  }
}

const RUNTIME_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGQUIT', 'uncaughtException'] as const;
let crashHandler = false;

/**
 * Serve one step on faas-js-runtime. `signals: true` is the container (and `mlops serve`) path: the runtime's
 * handler drains through the module's shutdown on SIGTERM, and an uncaught exception exits 1. Otherwise
 * (tests, `mlops dev`, many steps in one process) the runtime's process handlers are removed again, so
 * the caller owns signals and close().
 */
export async function serveStep(step: StepDefinition, deps: StepDeps, opts: { port?: number; signals?: boolean } = {}): Promise<RunningStep> {
  const mod = faasModule(step, deps, { guarded: true });
  if (opts.signals) installCrashHandler(deps.logger);
  const emitter = process as unknown as NodeJS.EventEmitter;
  const before = new Map(RUNTIME_SIGNALS.map((s) => [s, new Set(emitter.listeners(s))]));
  const server = await faasRuntime.start(mod as unknown as Parameters<typeof faasRuntime.start>[0], startOptions(step, deps.settings, opts.port ?? 0));
  if (!opts.signals) {
    for (const s of RUNTIME_SIGNALS) {
      for (const l of emitter.listeners(s)) if (!before.get(s)?.has(l)) emitter.off(s, l as (...args: unknown[]) => void);
    }
  }
  guardRequests(server, step.input === 'http');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    close: async () => {
      await mod.shutdown();
      server.closeAllConnections();
      await new Promise<void>((resolve) => { server.close(() => resolve()); });
    },
  };
}

/**
 * The runtime's own handler (the `death` package) calls process.exit(0) on an uncaught exception, so a
 * crash would look like a clean exit. Ours runs first: log it and exit 1.
 */
function installCrashHandler(logger: Logger): void {
  if (crashHandler) return;
  crashHandler = true;
  process.prependListener('uncaughtException', (err, origin) => {
    logger.fatal({ err: err instanceof Error ? err.stack ?? err.message : String(err), origin }, 'uncaught exception: exiting');
    process.exit(1);
  });
}
