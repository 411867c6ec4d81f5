// The `mlops` command as a user runs it: real processes, real kubectl against `mlops cluster`.
import { spawn, execFile, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { HTTP } from 'cloudevents';
import { createServer as createHttpServer } from 'node:http';
import { parseYamlDocs } from '../dev/manifests.ts';

const NODE = process.execPath;
// Async where the test process itself must answer (the broker stand-in lives in this process).
const run = promisify(execFile);
const MLOPS = 'bin/mlops.js';

function start(args: string[], env: Record<string, string> = {}): { proc: ChildProcessWithoutNullStreams; line: (re: RegExp) => Promise<string> } {
  const proc = spawn(NODE, [MLOPS, ...args], { env: { ...process.env, ...env } });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  proc.stderr.on('data', (c: Buffer) => { out += c.toString(); });
  const line = (re: RegExp): Promise<string> => new Promise((resolve, reject) => {
    const deadline = setTimeout(() => { clearInterval(poll); reject(new Error(`no line ${String(re)} in:\n${out}`)); }, 30_000);
    const poll = setInterval(() => {
      const m = re.exec(out);
      if (m) { clearInterval(poll); clearTimeout(deadline); resolve(m[1] ?? m[0]); }
    }, 20);
  });
  return { proc, line };
}

const stop = (proc: ChildProcessWithoutNullStreams): Promise<number | null> => new Promise((r) => { proc.once('exit', (code) => r(code)); proc.kill('SIGTERM'); });

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('mlops CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mlops-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('`mlops cluster` prints its kubeconfig once it serves; kubectl sees our CRDs; `mlops serve` runs a step against it; `mlops status` reads it', async () => {
    const kubeconfig = join(dir, 'kubeconfig');
    const cluster = start(['cluster', '--kubeconfig', kubeconfig]);
    try {
      expect(await cluster.line(/kubeconfig: (\S+)/)).toBe(kubeconfig);
      const crds = execFileSync('kubectl', ['--kubeconfig', kubeconfig, 'get', 'crd', '-o', 'name'], { encoding: 'utf8' });
      expect(crds).toContain('customresourcedefinition.apiextensions.k8s.io/modelruns.lifecycle.mlops.dev');
      execFileSync('kubectl', ['--kubeconfig', kubeconfig, 'create', 'namespace', 'model-lifecycle']);

      const port = await freePort();
      const served = start(['serve', 'start-training', '--port', String(port)], { KUBECONFIG: kubeconfig, NAMESPACE: 'model-lifecycle', LOG_LEVEL: 'silent', HOST: '127.0.0.1' });
      try {
        await served.line(/serving start-training on (\S+)/);
        const message = HTTP.binary(new (await import('cloudevents')).CloudEvent({ type: 'dev.mlops.training.requested.v1', source: '/cli-test', id: 'cli-1', datacontenttype: 'application/json', data: { model: 'anomaly-detector', trigger: 'manual' } }));
        const res = await fetch(`http://127.0.0.1:${port}`, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string });
        expect(res.status).toBe(200);
        expect(res.headers.get('ce-type')).toBe('dev.mlops.training.started.v1');
        const runs = execFileSync('kubectl', ['--kubeconfig', kubeconfig, '-n', 'model-lifecycle', 'get', 'mrun'], { encoding: 'utf8' });
        expect(runs).toMatch(/NAME\s+MODEL\s+TRIGGER\s+PHASE\s+AGE/);
        expect(runs).toMatch(/anomaly-detector-[0-9a-f]{10}\s+anomaly-detector\s+manual\s+Training/);
        expect(execFileSync('kubectl', ['--kubeconfig', kubeconfig, '-n', 'model-lifecycle', 'get', 'notebookvalidationjobs', '-o', 'name'], { encoding: 'utf8' })).toMatch(/anomaly-detector-/);
      } finally {
        expect(await stop(served.proc)).toBe(0);
      }

      const status = execFileSync(NODE, [MLOPS, 'status', '--namespace', 'model-lifecycle'], { encoding: 'utf8', env: { ...process.env, KUBECONFIG: kubeconfig } });
      expect(status.split('\n')[0]).toMatch(/^MODEL\s+SERVED RELEASE\s+TRAINED AT\s+AGE\s+LAST RUN\s+PHASE\s+VERDICT\s+LOCK\s+NEXT RUN\s+PAUSED\s+PINNED$/);
      expect(status).toMatch(/anomaly-detector\s+-\s+-\s+-\s+anomaly-detector-[0-9a-f]{10}\s+Training\s+-\s+anomaly-detector-[0-9a-f]{10}\s+\d{4}-/);
      const runs = execFileSync(NODE, [MLOPS, 'runs', 'anomaly-detector', '--namespace', 'model-lifecycle'], { encoding: 'utf8', env: { ...process.env, KUBECONFIG: kubeconfig } });
      expect(runs).toMatch(/anomaly-detector-[0-9a-f]{10}\s+Training\s+trigger manual/);
      expect(runs).toMatch(/training\s+\d{4}-.*→ …\s+running/);
    } finally {
      expect(await stop(cluster.proc)).toBe(0);
    }
  });

  test('`mlops cluster --profile openshift --kube-version 1.26`: kubectl sees 1.26 and Pod Security refuses a plain pod; bad flags exit 1', async () => {
    const kubeconfig = join(dir, 'kubeconfig-openshift');
    const cluster = start(['cluster', '--kubeconfig', kubeconfig, '--profile', 'openshift', '--kube-version', '1.26']);
    try {
      await cluster.line(/kubeconfig: (\S+)/);
      const version = JSON.parse(execFileSync('kubectl', ['--kubeconfig', kubeconfig, 'version', '-o', 'json'], { encoding: 'utf8' })) as { serverVersion: { minor: string } };
      expect(version.serverVersion.minor).toBe('26');
      const refused = await run('kubectl', ['--kubeconfig', kubeconfig, 'run', 'plain', '--image=python:3.11', '--restart=Never']).then(() => '', (err: { stderr: string }) => err.stderr);
      expect(refused).toContain('pods "plain" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false');
    } finally {
      await stop(cluster.proc);
    }
    const bad = await run(NODE, [MLOPS, 'dev', '--profile', 'vanilla']).then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--profile must be openshift or kubernetes, not "vanilla"');
  });

  test('`mlops train` posts a manual training.requested to the broker; what start-training would refuse is refused before sending (exit 2)', async () => {
    const received: Array<{ type: string; source: string; data: unknown }> = [];
    const broker = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => { const e = HTTP.toEvent({ headers: req.headers, body }) as { type: string; source: string; data: unknown }; received.push({ type: e.type, source: e.source, data: e.data }); res.writeHead(202).end(); });
    });
    await new Promise<void>((r) => broker.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(broker.address() as { port: number }).port}`;
    const refused = async (args: string[]): Promise<{ code: number | null; stderr: string }> => {
      try { await run(NODE, [MLOPS, 'train', ...args, '--broker', url], { encoding: 'utf8' }); } catch (err) { return err as { code: number; stderr: string }; }
      return { code: 0, stderr: '' };
    };
    try {
      const { stdout: out } = await run(NODE, [MLOPS, 'train', 'predictive-analytics', '--hours', '24', '--data-source', 'prometheus', '--gpu', '--broker', url], { encoding: 'utf8' });
      expect(out).toMatch(/requested training of predictive-analytics/);
      expect(received).toHaveLength(1);
      expect(received[0]).toMatchObject({ type: 'dev.mlops.training.requested.v1', source: '/model-lifecycle/mlops-cli', data: { model: 'predictive-analytics', trigger: 'manual', trainingHours: 24, dataSource: 'prometheus', profile: 'gpu' } });

      const cases: Array<[string[], string]> = [
        [['no-such-model'], 'mlops train: unknown model "no-such-model": not in the catalog config/models.yaml (models: anomaly-detector, predictive-analytics)\n'],
        [['predictive-analytics', '--ref', 'release-1.2'], 'mlops train: refused by rule overrides.gitRef: sender "mlops-cli" may not set gitRef for model predictive-analytics (allowed: git-intake)\n'],
        [['predictive-analytics', '--ref', 'main..evil'], ''],
        [['anomaly-detector', '--hours', 'abc'], ''],
        [['anomaly-detector', '--data-source', 'csv'], ''],
      ];
      for (const [args, message] of cases) {
        const failed = await refused(args);
        expect(failed.code).toBe(2);
        if (message) expect(failed.stderr).toBe(message);
      }
      expect((await refused(['predictive-analytics', '--ref', 'main..evil'])).stderr).toMatch(/^mlops train: invalid dev\.mlops\.training\.requested\.v1 event: data\.gitRef: /);
      expect((await refused(['anomaly-detector', '--hours', 'abc'])).stderr).toMatch(/data\.trainingHours/);
      expect((await refused(['anomaly-detector', '--data-source', 'csv'])).stderr).toMatch(/data\.dataSource/);
      expect(received).toHaveLength(1);

      // A catalog that lets the CLI choose the branch: the same command now goes through.
      const open = join(dir, 'open-models.yaml');
      writeFileSync(open, `${readFileSync('config/models.yaml', 'utf8')}\n`.replace('    gitRef: [git-intake]', '    gitRef: [git-intake, mlops-cli]'));
      await run(NODE, [MLOPS, 'train', 'predictive-analytics', '--ref', 'release-1.2', '--catalog', open, '--broker', url], { encoding: 'utf8' });
      expect(received[1]).toMatchObject({ data: { model: 'predictive-analytics', gitRef: 'release-1.2' } });
    } finally {
      await new Promise<void>((r) => broker.close(() => r()));
    }
  });

  test('day-2 commands with the user\'s kubeconfig: `mlops pause` stores who and why, `mlops train` refuses a paused model (exit 2) unless --force, `mlops status` shows it, `mlops resume` lifts it; `mlops rollback` with nothing to go back to exits 2', async () => {
    const kubeconfig = join(dir, 'kubeconfig-day2');
    const cluster = start(['cluster', '--kubeconfig', kubeconfig]);
    const received: unknown[] = [];
    const broker = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => { received.push((HTTP.toEvent({ headers: req.headers, body }) as { data: unknown }).data); res.writeHead(202).end(); });
    });
    await new Promise<void>((r) => broker.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(broker.address() as { port: number }).port}`;
    const env = { ...process.env, KUBECONFIG: kubeconfig, NAMESPACE: 'model-lifecycle' };
    const mlops = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
      try { const r = await run(NODE, [MLOPS, ...args], { encoding: 'utf8', env }); return { code: 0, ...r }; } catch (err) { return err as { code: number; stdout: string; stderr: string }; }
    };
    try {
      await cluster.line(/kubeconfig: (\S+)/);
      execFileSync('kubectl', ['--kubeconfig', kubeconfig, 'create', 'namespace', 'model-lifecycle']);
      const paused = await mlops(['pause', 'anomaly-detector', '--reason', 'INC-42 bad data']);
      expect(paused.code).toBe(0);
      expect(paused.stdout).toMatch(/^anomaly-detector paused by admin at \S+: INC-42 bad data: schedule, drift, git, pipeline and catch-up requests are skipped/);
      const refusedTrain = await mlops(['train', 'anomaly-detector', '--broker', url]);
      expect(refusedTrain.code).toBe(2);
      expect(refusedTrain.stderr).toMatch(/^mlops train: model anomaly-detector is paused by admin at \S+: INC-42 bad data; pass --force to train it anyway/);
      expect(received).toHaveLength(0);
      expect((await mlops(['train', 'anomaly-detector', '--force', '--broker', url])).code).toBe(0);
      expect(received).toEqual([expect.objectContaining({ model: 'anomaly-detector', trigger: 'manual', force: true })]);
      const status = await mlops(['status']);
      expect(status.stdout).toMatch(/^anomaly-detector .* yes \(admin\)\s+-$/m);
      expect(status.stdout).toMatch(/^note: anomaly-detector paused by admin at \S+: INC-42 bad data$/m);
      expect((await mlops(['resume', 'anomaly-detector'])).stdout).toMatch(/^anomaly-detector resumed by admin/);
      expect((await mlops(['status'])).stdout).not.toMatch(/^note:/m);
      const rollback = await mlops(['rollback', 'anomaly-detector']);
      expect(rollback.code).toBe(2);
      expect(rollback.stderr).toMatch(/^mlops rollback: no release to go back to/);
      expect((await mlops(['pin', 'anomaly-detector'])).code).toBe(2);
    } finally {
      await new Promise<void>((r) => broker.close(() => r()));
      expect(await stop(cluster.proc)).toBe(0);
    }
  });

  test('`mlops dev --once` on a machine without sklearn still completes, and says the gate report was simulated', async () => {
    const { stdout } = await run(NODE, [MLOPS, 'dev', '--once'], { encoding: 'utf8', env: { ...process.env, MLOPS_NO_SKLEARN: '1' }, timeout: 120_000 });
    expect(stdout).toMatch(/^kubeconfig: \S+$/m);
    expect(stdout).toMatch(/^broker: http:\/\/127\.0\.0\.1:\d+\/model-lifecycle\/model-lifecycle$/m);
    expect(stdout).toMatch(/^intake drift-intake: http:\/\/127\.0\.0\.1:\d+$/m);
    expect(stdout).toMatch(/anomaly-detector: anomaly-detector-[0-9a-f]{10} Succeeded \(expected Succeeded\) \[gate report simulated: sklearn not available\] ok/);
    expect(stdout).toMatch(/predictive-analytics: predictive-analytics-[0-9a-f]{10} Succeeded \(expected Succeeded\) \[gate report simulated: sklearn not available\] ok/);
    expect(stdout).toMatch(/\$ mlops status\nMODEL\s+SERVED RELEASE/);
    // notify's messages reach the local Slack stand-in, once per run however the verdict was delivered.
    expect(stdout.match(/notify slack: Deployment verified: anomaly-detector /g)).toHaveLength(1);
    expect(stdout.match(/notify slack: Deployment verified: predictive-analytics /g)).toHaveLength(1);
  });

  test('`mlops render --out DIR` writes the manifests for the catalog; an unknown command exits 2 with usage', () => {
    const out = join(dir, 'rendered');
    execFileSync(NODE, [MLOPS, 'render', '--out', out, '--namespace', 'ml', '--image', 'registry.example.com/mlops:1'], { encoding: 'utf8' });
    const services = parseYamlDocs(readFileSync(join(out, 'knative/services.yaml'), 'utf8')) as Array<{ metadata: { namespace: string }; spec: { template: { spec: { containers: Array<{ image: string }> } } } }>;
    expect(services.length).toBeGreaterThanOrEqual(11);
    for (const s of services) {
      expect(s.metadata.namespace).toBe('ml');
      expect(s.spec.template.spec.containers[0]?.image).toBe('registry.example.com/mlops:1');
    }
    // The platform this replaces: its namespace, training image, ServiceAccount and Prometheus; EventPolicies.
    const platform = join(dir, 'platform');
    execFileSync(NODE, [MLOPS, 'render', '--out', platform, '--platform', 'openshift-aiops-platform', '--sender-auth'], { encoding: 'utf8' });
    const maps = parseYamlDocs(readFileSync(join(platform, 'configmaps.yaml'), 'utf8')) as Array<{ metadata: { name: string; namespace: string }; data: Record<string, string> }>;
    const models = (parseYamlDocs(maps.find((m) => m.metadata.name === 'model-catalog')?.data['models.yaml'] ?? '')[0] as { models: Array<{ notebook: { image: string }; serviceAccountName: string; prometheusUrl: string }> }).models;
    expect(maps.every((m) => m.metadata.namespace === 'self-healing-platform')).toBe(true);
    for (const m of models) {
      expect(m).toMatchObject({ notebook: { image: 'image-registry.openshift-image-registry.svc:5000/self-healing-platform/notebook-validator:latest' }, serviceAccountName: 'self-healing-workbench', prometheusUrl: 'http://prometheus-k8s.openshift-monitoring.svc:9090' });
    }
    expect(readFileSync(join(platform, 'rbac/roles.yaml'), 'utf8')).toMatch(/name: self-healing-workbench\n/);
    expect(readFileSync(join(platform, 'knative/eventpolicies.yaml'), 'utf8')).toMatch(/kind: EventPolicy/);
    let failed: { status: number | null; stderr: string } = { status: 0, stderr: '' };
    try { execFileSync(NODE, [MLOPS, 'frobnicate'], { encoding: 'utf8', stdio: 'pipe' }); } catch (err) { failed = err as { status: number; stderr: string }; }
    expect(failed.status).toBe(2);
    expect(failed.stderr).toMatch(/unknown command "frobnicate"[\s\S]*usage: mlops/);
  });
});

describe('mlops dev rollout and ApiServerSource flags', () => {
  test('defaults, mapping onto startLocal options, and a seed chosen when a knob is on', async () => {
    const { fidelityOptions } = await import('../cli/dev.ts');
    expect(fidelityOptions({})).toEqual({ rollout: { rollout: 'raw', drainSeconds: 30, readyDelaySeconds: 2 } });
    expect(fidelityOptions({ rollout: 'serverless', 'drain-seconds': '20', 'ready-delay-seconds': '3', 'restart-pod': true, 'drop-events': '30', coalesce: true, reorder: true, seed: '42' })).toEqual({
      rollout: { rollout: 'serverless', drainSeconds: 20, readyDelaySeconds: 3, restartOnce: true },
      apiServerFaults: { dropPercent: 30, coalesce: true, reorder: true, seed: 42 },
    });
    const chosen = fidelityOptions({ coalesce: true }).apiServerFaults?.seed;
    expect(Number.isInteger(chosen)).toBe(true);
    expect(() => fidelityOptions({ rollout: 'blue-green' })).toThrow('--rollout must be raw or serverless');
    expect(() => fidelityOptions({ 'drop-events': '101' })).toThrow('--drop-events must be <= 100');
    expect(() => fidelityOptions({ 'drain-seconds': '-1' })).toThrow('--drain-seconds must be >= 0');
    expect(() => fidelityOptions({ seed: '1.5' })).toThrow('--seed must be an integer');
    // --queued-request: a second request per model parked on the lock (docs/run-lifecycle.md, Chaos).
    expect(fidelityOptions({ 'queued-request': true })).toEqual({ rollout: { rollout: 'raw', drainSeconds: 30, readyDelaySeconds: 2 }, queuedRequest: true });
  });

  test('a bad value stops `mlops dev` before anything starts, with the reason', async () => {
    let failed: { code: number | null; stderr: string } = { code: 0, stderr: '' };
    try { await run(NODE, [MLOPS, 'dev', '--once', '--rollout', 'canary'], { encoding: 'utf8' }); } catch (err) { failed = err as { code: number; stderr: string }; }
    expect(failed.code).toBe(1);
    expect(failed.stderr).toBe('mlops: --rollout must be raw or serverless\n');
  });
});
