// HTTP front: authentication, discovery, RBAC, faults, then the REST verbs on the store.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { ApiError, badRequest, methodNotSupported, statusForCode, unauthorized } from './errors.ts';
import type { Faults } from './faults.ts';
import { apiGroup, apiGroupList, apiResourceList, apiVersionOf, coreApiVersions } from './registry.ts';
import type { Registry, ResourceDef } from './registry.ts';
import { forbiddenFor } from './rbac.ts';
import type { Authorizer, RequestAttributes, UserInfo } from './rbac.ts';
import type { Store, WriteOptions } from './store.ts';
import type { Admission } from './admission.ts';
import { toTable } from './table.ts';
import type { IncludeObject } from './table.ts';
import type { KubeObject, PropagationPolicy, Verb } from './types.ts';
import { serveWatch } from './watch.ts';
import { answerReview, impersonate, partialList, partialObject, wantsMetadata } from './reviews.ts';
import { openApiV3GroupVersion, openApiV3Root } from './openapi.ts';
import { decodeKubernetesProtobuf } from './protobuf.ts';

export interface RequestLogEntry {
  verb: string;
  group: string;
  version: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  user: string;
  /** HTTP status; 0 when the connection was reset by an injected fault. */
  status: number;
  ms: number;
}

export interface RouterContext {
  store: Store;
  registry: Registry;
  authorizer: Authorizer;
  faults: Faults;
  rbac: boolean;
  users: Map<string, UserInfo>;
  log: (entry: RequestLogEntry) => void;
  bookmarkIntervalMs: number;
  watches: Set<() => void>;
  maxBodyBytes: number;
  /** The profile's validating admission plugins (dev/emulator/admission.ts). */
  admission?: Admission;
  /** `1.26` or `1.32`: what `/version` reports. */
  kubeVersion?: string;
}

interface ResourcePath {
  group: string;
  version: string;
  namespace?: string;
  resource: string;
  name?: string;
  subresource?: string;
  watchPrefix: boolean;
}

const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-emulator',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'go1.23.0',
  compiler: 'gc',
  platform: 'linux/amd64',
};

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
  res.end(text);
}

function sendError(res: ServerResponse, err: ApiError): void {
  sendJson(res, err.code, err.toStatus());
}

/** Splits `/api/v1/...` or `/apis/g/v/...` into its parts; undefined for non-resource paths. */
export function parseResourcePath(pathname: string, registry: Registry): ResourcePath | undefined {
  const segs = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs.length >= 3) {
    group = '';
    version = segs[1] ?? '';
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 4) {
    group = segs[1] ?? '';
    version = segs[2] ?? '';
    rest = segs.slice(3);
  } else return undefined;
  let watchPrefix = false;
  if (rest[0] === 'watch') {
    watchPrefix = true;
    rest = rest.slice(1);
  }
  const namespacedResource = rest[0] === 'namespaces' && rest.length >= 3 && registry.lookup({ group, version, resource: rest[2] ?? '' })?.namespaced;
  if (namespacedResource) {
    const out: ResourcePath = { group, version, namespace: rest[1] ?? '', resource: rest[2] ?? '', watchPrefix };
    if (rest[3] !== undefined) out.name = rest[3];
    if (rest[4] !== undefined) out.subresource = rest[4];
    if (rest.length > 5) return undefined;
    return out;
  }
  const out: ResourcePath = { group, version, resource: rest[0] ?? '', watchPrefix };
  if (rest[1] !== undefined) out.name = rest[1];
  if (rest[2] !== undefined) out.subresource = rest[2];
  if (rest.length > 3) return undefined;
  return out;
}

async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > max) throw new ApiError(413, 'RequestEntityTooLarge', `the request body exceeds ${max} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

function parseBody(text: string, contentType: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    if (/yaml/.test(contentType) && !/apply-patch/.test(contentType)) return parseYaml(text) as unknown;
    return JSON.parse(text) as unknown;
  } catch (err) {
    if (/yaml/.test(contentType)) throw badRequest(`error decoding YAML: ${(err as Error).message}`);
    throw badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
  }
}

function wantsTable(accept: string | undefined): boolean {
  return accept !== undefined && /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}

function nonResource(pathname: string, registry: Registry, kubeVersion = '1.32'): unknown {
  const p = pathname.replace(/\/+$/, '') || '/';
  switch (p) {
    case '/version':
      return { ...SERVER_VERSION, minor: kubeVersion.split('.')[1] ?? SERVER_VERSION.minor, gitVersion: `v${kubeVersion}.0-emulator` };
    case '/api':
      return coreApiVersions();
    case '/apis':
      return apiGroupList(registry);
    case '/openapi/v3':
      return openApiV3Root(registry);
    case '/':
      return { paths: ['/api', '/api/v1', '/apis', '/healthz', '/livez', '/readyz', '/version'] };
    default:
      break;
  }
  const segs = p.split('/').filter((s) => s !== '');
  if (segs[0] === 'openapi' && segs[1] === 'v3') {
    if (segs[2] === 'api' && segs.length === 4) return openApiV3GroupVersion(registry, '', segs[3] ?? '');
    if (segs[2] === 'apis' && segs.length === 5) return openApiV3GroupVersion(registry, segs[3] ?? '', segs[4] ?? '');
    return undefined;
  }
  if (segs[0] === 'api' && segs.length === 2) return apiResourceList(registry, '', segs[1] ?? '');
  if (segs[0] === 'apis' && segs.length === 2) return apiGroup(registry, segs[1] ?? '');
  if (segs[0] === 'apis' && segs.length === 3) return apiResourceList(registry, segs[1] ?? '', segs[2] ?? '');
  return undefined;
}

function authenticate(req: IncomingMessage, users: Map<string, UserInfo>): UserInfo | undefined {
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
  if (!m) return undefined;
  return users.get((m[1] ?? '').trim());
}

function verbFor(method: string, rp: ResourcePath, watch: boolean): Verb | undefined {
  switch (method) {
    case 'GET':
      return rp.name !== undefined ? 'get' : watch ? 'watch' : 'list';
    case 'POST':
      return rp.name === undefined ? 'create' : undefined;
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return rp.name !== undefined ? 'delete' : 'deletecollection';
    default:
      return undefined;
  }
}

function propagationFrom(query: URLSearchParams, body: unknown): PropagationPolicy | undefined {
  const fromBody = body && typeof body === 'object' ? (body as { propagationPolicy?: unknown; orphanDependents?: unknown }) : {};
  const p = query.get('propagationPolicy') ?? (typeof fromBody.propagationPolicy === 'string' ? fromBody.propagationPolicy : undefined);
  if (p === 'Foreground' || p === 'Background' || p === 'Orphan') return p;
  if (p !== undefined && p !== null) throw badRequest(`unsupported propagationPolicy: ${p}`);
  if (query.get('orphanDependents') === 'true' || fromBody.orphanDependents === true) return 'Orphan';
  return undefined;
}

export function createHandler(ctx: RouterContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(ctx, req, res).catch((err: unknown) => {
      const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`);
      sendError(res, e);
    });
  };
}

/**
 * kubectl (client-go's clientcmd) drops every credential when the server URL is plain http, so kubeconfigs we
 * write also carry the token as a path prefix `/auth/<token>` of the server URL; a Bearer header wins over it.
 */
const AUTH_PREFIX = /^\/auth\/([^/]+)(\/.*)?$/;

async function handle(ctx: RouterContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const url = new URL(req.url ?? '/', 'http://emulator.local');
  let pathToken: string | undefined;
  const prefixed = AUTH_PREFIX.exec(url.pathname);
  if (prefixed) {
    pathToken = decodeURIComponent(prefixed[1] ?? '');
    url.pathname = prefixed[2] ?? '/';
  }
  const method = (req.method ?? 'GET').toUpperCase();
  const rp = parseResourcePath(url.pathname, ctx.registry);

  if (!rp) {
    if (method !== 'GET' && method !== 'HEAD') {
      sendError(res, new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
      return;
    }
    if (['/healthz', '/livez', '/readyz'].includes(url.pathname)) {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    const doc = nonResource(url.pathname, ctx.registry, ctx.kubeVersion);
    if (doc === undefined) sendError(res, new ApiError(404, 'NotFound', 'the server could not find the requested resource'));
    else sendJson(res, 200, doc);
    return;
  }

  const query = url.searchParams;
  const watch = rp.watchPrefix || query.get('watch') === 'true' || query.get('watch') === '1';
  const verb = verbFor(method, rp, watch) ?? method.toLowerCase();
  const entry: RequestLogEntry = { verb, group: rp.group, version: rp.version, resource: rp.resource, user: '', status: 0, ms: 0 };
  if (rp.subresource !== undefined) entry.subresource = rp.subresource;
  if (rp.namespace !== undefined) entry.namespace = rp.namespace;
  if (rp.name !== undefined) entry.name = rp.name;
  let logged = false;
  const finish = (status: number): void => {
    if (logged) return;
    logged = true;
    entry.status = status;
    entry.ms = performance.now() - started;
    ctx.log(entry);
  };
  res.on('finish', () => finish(res.statusCode));
  res.on('close', () => finish(res.headersSent ? res.statusCode : 0));

  const authenticated = authenticate(req, ctx.users) ?? (pathToken !== undefined ? ctx.users.get(pathToken) : undefined);
  if (!authenticated) {
    sendError(res, unauthorized());
    return;
  }
  entry.user = authenticated.name;
  const user = impersonate(req, authenticated, ctx.authorizer, ctx.rbac);
  entry.user = user.name;

  const def = ctx.registry.lookup(rp);
  if (!def) {
    sendError(res, new ApiError(404, 'NotFound', 'the server could not find the requested resource'));
    return;
  }
  if (rp.subresource !== undefined && !def.subresources.includes(rp.subresource)) {
    sendError(res, new ApiError(404, 'NotFound', 'the server could not find the requested resource'));
    return;
  }
  if (rp.namespace !== undefined && !def.namespaced) {
    sendError(res, new ApiError(404, 'NotFound', 'the server could not find the requested resource'));
    return;
  }
  if (!verbFor(method, rp, watch) || (def.virtual && verb !== 'create')) {
    sendError(res, methodNotSupported(def.group, def.resource, verb));
    return;
  }

  const attrs: RequestAttributes = { verb, group: def.group, resource: def.resource };
  if (rp.subresource !== undefined) attrs.subresource = rp.subresource;
  if (rp.namespace !== undefined) attrs.namespace = rp.namespace;
  if (rp.name !== undefined) attrs.name = rp.name;
  // Everyone may ask what they may do (the real system:basic-user role).
  const selfReview = (def.group === 'authorization.k8s.io' && (def.resource === 'selfsubjectaccessreviews' || def.resource === 'selfsubjectrulesreviews'))
    || (def.group === 'authentication.k8s.io' && def.resource === 'selfsubjectreviews');
  if (ctx.rbac && !selfReview && !ctx.authorizer.allowed(user, attrs)) {
    sendError(res, forbiddenFor(user, attrs));
    return;
  }

  const faultReq: { verb: string; resource: string; subresource?: string; namespace?: string; user?: string } = { verb, resource: def.resource, user: user.name };
  if (rp.subresource !== undefined) faultReq.subresource = rp.subresource;
  if (rp.namespace !== undefined) faultReq.namespace = rp.namespace;
  const fault = ctx.faults.decide(faultReq);
  if (fault.latencyMs > 0) await new Promise((r) => setTimeout(r, fault.latencyMs));
  if (fault.reset) {
    req.socket.destroy();
    return;
  }
  if (fault.status !== undefined) {
    sendError(res, statusForCode(fault.status, fault.message));
    return;
  }

  const contentType = (req.headers['content-type'] ?? 'application/json').split(';')[0]?.trim() ?? 'application/json';
  if (contentType === 'application/cbor') {
    throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`);
  }
  const body =
    method === 'GET'
      ? undefined
      : contentType === 'application/vnd.kubernetes.protobuf'
        ? decodeKubernetesProtobuf(await readBody(req, ctx.maxBodyBytes))
        : parseBody((await readBody(req, ctx.maxBodyBytes)).toString('utf8'), contentType);
  const table = wantsTable(req.headers.accept);
  const metadataOnly = wantsMetadata(req.headers.accept);
  const includeObject = (query.get('includeObject') ?? 'Metadata') as IncludeObject;
  const dryRun = query.getAll('dryRun').includes('All');
  const version = rp.version;
  const store = ctx.store;
  const ns = rp.namespace;

  if (rp.subresource === 'log') {
    if (verb !== 'get') throw methodNotSupported(def.group, 'pods/log', verb);
    store.read({ group: def.group, version, resource: def.resource }, { name: rp.name ?? '', namespace: ns });
    const text = store.podLog(ns ?? 'default', rp.name ?? '');
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
    return;
  }

  const selector = (opts: { labelSelector?: string; fieldSelector?: string }): { labelSelector?: string; fieldSelector?: string } => {
    const l = query.get('labelSelector');
    const f = query.get('fieldSelector');
    if (l) opts.labelSelector = l;
    if (f) opts.fieldSelector = f;
    return opts;
  };
  const ref = { group: def.group, version, resource: def.resource };
  const subresource = rp.subresource === 'status' ? ('status' as const) : undefined;
  // Validating admission sees the final object of every create/update/patch, dry runs included (as upstream).
  const validate = (operation: 'CREATE' | 'UPDATE'): WriteOptions['validate'] => {
    const admission = ctx.admission;
    if (!admission) return undefined;
    return (object, oldObject) => {
      const req: Parameters<Admission['validate']>[0] = { user, operation, def, object };
      if (rp.subresource !== undefined) req.subresource = rp.subresource;
      if (ns !== undefined) req.namespace = ns;
      else if (object.metadata.namespace !== undefined) req.namespace = object.metadata.namespace;
      if (oldObject) req.oldObject = oldObject;
      admission.validate(req);
    };
  };

  switch (verb) {
    case 'get': {
      const obj = store.read(ref, { name: rp.name ?? '', namespace: ns });
      sendJson(res, 200, table ? toTable(def, version, [obj], { resourceVersion: obj.metadata.resourceVersion }, includeObject) : metadataOnly ? partialObject(obj) : obj);
      return;
    }
    case 'list': {
      const limit = Number(query.get('limit') ?? '0');
      const page = store.listPage(ref, {
        ...selector({}),
        namespace: ns,
        limit: Number.isFinite(limit) && limit > 0 ? limit : undefined,
        continue: query.get('continue') ?? undefined,
      });
      const meta: { resourceVersion: string; continue?: string; remainingItemCount?: number } = { resourceVersion: page.resourceVersion };
      if (page.continue) meta.continue = page.continue;
      if (page.remainingItemCount !== undefined) meta.remainingItemCount = page.remainingItemCount;
      if (table) sendJson(res, 200, toTable(def, version, page.items, meta, includeObject));
      else if (metadataOnly) sendJson(res, 200, partialList(page.items, meta));
      else sendJson(res, 200, { apiVersion: apiVersionOf(def.group, version), kind: def.listKind, metadata: meta, items: page.items });
      return;
    }
    case 'watch': {
      const timeout = query.get('timeoutSeconds');
      const w: Parameters<typeof serveWatch>[0] = {
        store,
        def,
        version,
        ...selector({}),
        allowBookmarks: query.get('allowWatchBookmarks') === 'true' || query.get('allowWatchBookmarks') === '1',
        sendInitialEvents: query.get('sendInitialEvents') === 'true',
        bookmarkIntervalMs: ctx.bookmarkIntervalMs,
      };
      if (ns !== undefined) w.namespace = ns;
      if (rp.watchPrefix && rp.name !== undefined) w.name = rp.name;
      const rv = query.get('resourceVersion');
      if (rv !== null) w.resourceVersion = rv;
      if (timeout !== null) w.timeoutSeconds = Number(timeout);
      if (table) w.table = { includeObject };
      finish(200);
      const stop = serveWatch(w, res);
      ctx.watches.add(stop);
      res.on('close', () => ctx.watches.delete(stop));
      return;
    }
    case 'create': {
      const review = def.virtual ? answerReview(def, ns, user, body as KubeObject | undefined, ctx.authorizer, ctx.rbac) : undefined;
      if (review) {
        sendJson(res, 201, review);
        return;
      }
      if (!body || typeof body !== 'object') throw badRequest('the request body must be an object');
      const created = store.createIn(def, version, body as KubeObject, ns, { dryRun, validate: validate('CREATE') });
      sendJson(res, 201, created);
      return;
    }
    case 'update': {
      if (!body || typeof body !== 'object') throw badRequest('the request body must be an object');
      const opts: WriteOptions = { dryRun, validate: validate('UPDATE') };
      if (subresource) opts.subresource = subresource;
      sendJson(res, 200, store.updateIn(def, version, body as KubeObject, ns, rp.name ?? '', opts));
      return;
    }
    case 'patch': {
      if (body === undefined) throw badRequest('the request body must not be empty');
      const opts: WriteOptions = { dryRun, validate: validate('UPDATE') };
      if (subresource) opts.subresource = subresource;
      sendJson(res, 200, store.patchIn(def, version, ns, rp.name ?? '', contentType, body, opts));
      return;
    }
    case 'delete': {
      const opts: { propagationPolicy?: PropagationPolicy; preconditions?: { uid?: string; resourceVersion?: string }; dryRun: boolean } = { dryRun };
      const policy = propagationFrom(query, body);
      if (policy) opts.propagationPolicy = policy;
      const pre = body && typeof body === 'object' ? (body as { preconditions?: { uid?: string; resourceVersion?: string } }).preconditions : undefined;
      if (pre) opts.preconditions = pre;
      sendJson(res, 200, store.deleteIn(def, version, ns, rp.name ?? '', opts));
      return;
    }
    case 'deletecollection': {
      const opts: { propagationPolicy?: PropagationPolicy; dryRun: boolean; namespace?: string; labelSelector?: string; fieldSelector?: string } = {
        dryRun,
        ...selector({}),
      };
      if (ns !== undefined) opts.namespace = ns;
      const policy = propagationFrom(query, body);
      if (policy) opts.propagationPolicy = policy;
      const items = store.deleteCollectionIn(def, version, opts);
      sendJson(res, 200, { apiVersion: apiVersionOf(def.group, version), kind: def.listKind, metadata: { resourceVersion: store.currentResourceVersion() }, items });
      return;
    }
    default:
      throw methodNotSupported(def.group, def.resource, verb);
  }
}

export type { ResourceDef };
