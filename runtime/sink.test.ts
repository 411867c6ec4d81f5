import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventTypes, buildEvent } from '../events/index.ts';
import { httpSink } from './sink.ts';

// The sink carries the SinkBinding's OIDC token when Knative mounted one (sender identity), re-read per send.
describe('httpSink sender identity', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mlops-sink-'));
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => { seen.push(req.headers); req.resume(); req.on('end', () => res.writeHead(202).end()); });
  let url = '';
  beforeAll(async () => { await new Promise<void>((r) => server.listen(0, '127.0.0.1', r)); url = `http://127.0.0.1:${(server.address() as { port: number }).port}`; });
  afterAll(async () => { server.closeAllConnections(); await new Promise<void>((r) => server.close(() => r())); rmSync(dir, { recursive: true, force: true }); });

  const event = () => buildEvent(EventTypes.trainingRequested, { step: 'watchdog', id: `e-${seen.length}`, data: { model: 'anomaly-detector', trigger: 'catchup' } });

  test('no token file: no Authorization header; a token file: Bearer with its (refreshed) content', async () => {
    const path = join(dir, 'token');
    const sink = httpSink(url, fetch, 5_000, path);
    await sink.send(event());
    writeFileSync(path, 'jwt-one\n');
    await sink.send(event());
    writeFileSync(path, 'jwt-two');
    await sink.send(event());
    expect(seen.map((h) => h.authorization)).toEqual([undefined, 'Bearer jwt-one', 'Bearer jwt-two']);
    expect(seen.every((h) => h['ce-source'] === '/model-lifecycle/watchdog')).toBe(true);
  });
});
