// HTTP watch streams: newline-delimited JSON watch events, resumable from a resourceVersion.
import type { ServerResponse } from 'node:http';
import { ApiError } from './errors.ts';
import { apiVersionOf } from './registry.ts';
import type { ResourceDef } from './registry.ts';
import { translateEvent } from './store.ts';
import type { Store, WatchEvent } from './store.ts';
import { toTable } from './table.ts';
import type { IncludeObject } from './table.ts';
import type { StoredObject } from './types.ts';

export interface WatchRequest {
  store: Store;
  def: ResourceDef;
  version: string;
  namespace?: string;
  name?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  allowBookmarks: boolean;
  sendInitialEvents: boolean;
  timeoutSeconds?: number;
  bookmarkIntervalMs: number;
  table?: { includeObject: IncludeObject };
}

/** Starts streaming; returns a function that ends the stream (used on server close). */
export function serveWatch(w: WatchRequest, res: ServerResponse): () => void {
  const { store, def, version } = w;
  const match = store.watchMatcher(def, {
    namespace: w.namespace,
    labelSelector: w.labelSelector,
    fieldSelector: w.fieldSelector,
    name: w.name,
  });
  const apiVersion = apiVersionOf(def.group, version);
  let closed = false;

  const render = (o: StoredObject): unknown =>
    w.table ? toTable(def, version, [o], { resourceVersion: o.metadata.resourceVersion }, w.table.includeObject) : o;
  const write = (type: string, object: unknown): void => {
    if (closed || res.writableEnded || res.destroyed) return;
    res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const send = (e: WatchEvent): void => write(e.type, render(e.object));
  const bookmark = (annotations?: Record<string, string>): void => {
    const metadata: Record<string, unknown> = { resourceVersion: store.currentResourceVersion() };
    if (annotations) metadata.annotations = annotations;
    write('BOOKMARK', { kind: def.kind, apiVersion, metadata });
  };

  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Transfer-Encoding': 'chunked',
    'Cache-Control': 'no-cache, private',
  });
  res.flushHeaders();

  const rv = w.resourceVersion;
  const fromScratch = rv === undefined || rv === '' || rv === '0' || w.sendInitialEvents;
  if (fromScratch) {
    const current = store.list({ group: def.group, version, resource: def.resource }, {
      namespace: def.namespaced ? w.namespace : undefined,
      labelSelector: w.labelSelector,
      fieldSelector: w.fieldSelector,
    });
    for (const o of current) if (w.name === undefined || o.metadata.name === w.name) send({ type: 'ADDED', object: o });
    if (w.sendInitialEvents && w.allowBookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
  } else {
    const since = Number(rv);
    try {
      if (!Number.isFinite(since)) throw new ApiError(400, 'BadRequest', `invalid resource version: ${rv}`);
      for (const e of store.eventsSince(def, since)) {
        const out = translateEvent(e, def, version, match);
        if (out) send(out);
      }
    } catch (err) {
      // Like the real watch cache: a 200 stream carrying one ERROR event, then the end.
      if (err instanceof ApiError) write('ERROR', err.toStatus());
      res.end();
      return () => undefined;
    }
  }

  const unsubscribe = store.onEvent((e) => {
    const out = translateEvent(e, def, version, match);
    if (out) send(out);
  });
  const timers: NodeJS.Timeout[] = [];
  if (w.allowBookmarks) timers.push(setInterval(() => bookmark(), w.bookmarkIntervalMs));
  if (w.timeoutSeconds !== undefined && w.timeoutSeconds > 0) timers.push(setTimeout(() => stop(), w.timeoutSeconds * 1000));

  function stop(): void {
    if (closed) return;
    closed = true;
    unsubscribe();
    for (const t of timers) clearTimeout(t);
    if (!res.writableEnded) res.end();
  }
  res.on('close', stop);
  return stop;
}
