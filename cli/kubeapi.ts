// A small raw Kubernetes API client for `mlops doctor`: the user's kubeconfig (KUBECONFIG or ~/.kube/config, as
// kubectl reads it) through client-node's KubeConfig for credentials and TLS, and plain HTTP requests so the doctor
// can ask what the typed clients do not expose together: `?dryRun=All`, `Impersonate-User`/`Impersonate-Group`,
// metadata-only reads, discovery documents and access reviews.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

export interface KubeResponse {
  status: number;
  body: unknown;
}

export interface RequestOpts {
  body?: unknown;
  query?: Record<string, string>;
  /** Act as this user (and these groups): the real API server authorises the impersonation itself. */
  as?: { user: string; groups?: string[] };
  accept?: string;
}

export interface KubeApi {
  server: string;
  /** The current context's namespace (default `default`). */
  namespace: string;
  request(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, opts?: RequestOpts): Promise<KubeResponse>;
}

const MAX_BODY = 8 * 1024 * 1024;

export function openKubeApi(kubeconfigPath?: string): KubeApi {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromDefault();
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the kubeconfig (set KUBECONFIG or the current context)');
  const server = cluster.server.replace(/\/+$/, '');
  const namespace = kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  return {
    server,
    namespace,
    async request(method, path, opts = {}) {
      const url = new URL(server + path);
      for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.append(k, v);
      const options: RequestOptions & { headers: Record<string, string | string[]> } = {
        method,
        headers: { Accept: opts.accept ?? 'application/json' },
      };
      await kc.applyToHTTPSOptions(options);
      if (opts.as) {
        options.headers['Impersonate-User'] = opts.as.user;
        if (opts.as.groups?.length) options.headers['Impersonate-Group'] = opts.as.groups;
      }
      const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
      if (payload !== undefined) {
        options.headers['Content-Type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
        options.headers['Content-Length'] = String(Buffer.byteLength(payload));
      }
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      return new Promise<KubeResponse>((resolve, reject) => {
        const req = send(url, options, (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY) { req.destroy(new Error(`response from ${path} exceeds ${MAX_BODY} bytes`)); return; }
            chunks.push(c);
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            try { body = text === '' ? undefined : JSON.parse(text); } catch { /* keep the text */ }
            resolve({ status: res.statusCode ?? 0, body });
          });
          res.on('error', reject);
        });
        req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: timed out after 30 s`)));
        req.on('error', reject);
        req.end(payload);
      });
    },
  };
}

/** The API server's own message of a failed request (a `Status` body), or the status code. */
export function statusMessage(r: KubeResponse): string {
  const b = r.body as { message?: unknown } | undefined;
  return typeof b?.message === 'string' ? b.message : `HTTP ${r.status}`;
}
