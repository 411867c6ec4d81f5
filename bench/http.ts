// A minimal HTTP client on node:http: the bench measures the functions, not fetch's pooling and body streams.
import http from 'node:http';
import { CloudEvent, HTTP } from 'cloudevents';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function post(url: string, headers: Record<string, string>, body: string, agent: http.Agent | false = false): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Headers and body of a CloudEvent in binary mode, as the broker sends it. */
export function binaryMessage(event: CloudEvent<unknown>): { headers: Record<string, string>; body: string } {
  const message = HTTP.binary(event);
  const body = typeof message.body === 'string' ? message.body : JSON.stringify(message.body ?? null);
  return { headers: message.headers as Record<string, string>, body };
}

/** A port that was free a moment ago (faas-js-runtime cannot take port 0). */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
