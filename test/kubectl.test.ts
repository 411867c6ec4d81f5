// Drives the real kubectl against a started emulator.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator } from '../dev/emulator/index.ts';
import type { Emulator } from '../dev/emulator/index.ts';
import { WIDGET_GROUP, widgetCrd } from '../dev/emulator/testkit.ts';

const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';

let emu: Emulator;
let dir: string;
let adminConfig: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectl(args: string[], opts: { kubeconfig?: string; stdin?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      KUBECTL,
      ['--kubeconfig', opts.kubeconfig ?? adminConfig, '--cache-dir', join(dir, 'cache'), ...args],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir }, timeout: 30000 },
      (err, stdout, stderr) => {
        if (err && typeof (err as { code?: unknown }).code !== 'number') {
          reject(new Error(`could not run ${KUBECTL}: ${err.message}`));
          return;
        }
        resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr });
      },
    );
    if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
  });
}

async function ok(args: string[], opts: { kubeconfig?: string; stdin?: string } = {}): Promise<string> {
  const r = await kubectl(args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

function widget(name: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget', metadata: { name, labels: { tier: 'a' } }, spec: { size: 1 }, ...extra });
}

beforeAll(async () => {
  if (!existsSync(KUBECTL)) {
    throw new Error(`kubectl not found at ${KUBECTL}: .ci/run installs Debian's kubernetes-client package, which provides it`);
  }
  emu = await startEmulator();
  dir = await mkdtemp(join(tmpdir(), 'kubectl-emu-'));
  adminConfig = join(dir, 'admin.kubeconfig');
  await emu.writeKubeconfig(adminConfig);
  await writeFile(join(dir, 'crd.json'), JSON.stringify(widgetCrd()));
});

afterAll(async () => {
  await emu?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('real kubectl against the emulator', () => {
  test('apply a CRD, then api-resources lists its kind', async () => {
    expect(await ok(['apply', '-f', join(dir, 'crd.json')])).toBe(`customresourcedefinition.apiextensions.k8s.io/widgets.${WIDGET_GROUP} created\n`);
    const out = await ok(['api-resources']);
    const line = out.split('\n').find((l) => l.startsWith('widgets '));
    expect(line?.split(/\s+/)).toEqual(['widgets', 'wdg', `${WIDGET_GROUP}/v1`, 'true', 'Widget']);
    expect(out).toMatch(/^pods\s+po\s+v1\s+true\s+Pod$/m);
    expect(out).toMatch(/^leases\s+coordination\.k8s\.io\/v1\s+true\s+Lease$/m);
  });

  test('apply custom resources; get -o json, get -l, printer columns', async () => {
    expect(await ok(['apply', '-f', '-'], { stdin: widget('w1') })).toBe(`widget.${WIDGET_GROUP}/w1 created\n`);
    await ok(['apply', '-f', '-'], { stdin: widget('w2', { metadata: { name: 'w2', labels: { tier: 'b' } } }) });
    const obj = JSON.parse(await ok(['get', 'widget', 'w1', '-o', 'json'])) as { spec: unknown; metadata: { namespace: string; uid: string } };
    expect(obj.spec).toEqual({ size: 1, color: 'blue' });
    expect(obj.metadata.namespace).toBe('default');
    expect(await ok(['get', 'wdg', '-l', 'tier=a', '-o', 'name'])).toBe(`widget.${WIDGET_GROUP}/w1\n`);
    expect(await ok(['get', 'wdg', '-l', 'tier in (a,b)', '-o', 'name'])).toBe(`widget.${WIDGET_GROUP}/w1\nwidget.${WIDGET_GROUP}/w2\n`);
    const table = (await ok(['get', 'widgets'])).trim().split('\n');
    expect(table[0]?.split(/\s+/)).toEqual(['NAME', 'SIZE', 'PHASE', 'AGE']);
    expect(table[1]).toMatch(/^w1\s+1\s+\d+s$/);
    const invalid = await kubectl(['apply', '-f', '-'], { stdin: widget('bad', { spec: { color: 'red' } }) });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('spec.size: Required value');
  });

  test('patch --type merge and --type json; replace with a stale resourceVersion is refused', async () => {
    const stale = await ok(['get', 'widget', 'w1', '-o', 'json']);
    expect(await ok(['patch', 'widget', 'w1', '--type', 'merge', '-p', '{"spec":{"size":5}}'])).toBe(`widget.${WIDGET_GROUP}/w1 patched\n`);
    await ok(['patch', 'widget', 'w1', '--type', 'json', '-p', '[{"op":"add","path":"/metadata/labels/extra","value":"yes"}]']);
    const now = JSON.parse(await ok(['get', 'widget', 'w1', '-o', 'json'])) as { spec: { size: number }; metadata: { labels: Record<string, string>; generation: number } };
    expect(now.spec.size).toBe(5);
    expect(now.metadata.labels).toEqual({ tier: 'a', extra: 'yes' });
    expect(now.metadata.generation).toBe(2);
    const failedTest = await kubectl(['patch', 'widget', 'w1', '--type', 'json', '-p', '[{"op":"test","path":"/spec/size","value":1}]']);
    expect(failedTest.code).toBe(1);
    expect(failedTest.stderr).toContain('test operation failed');

    const replaced = await kubectl(['replace', '-f', '-'], { stdin: stale });
    expect(replaced.code).toBe(1);
    expect(replaced.stderr).toContain('Error from server (Conflict)');
    expect(replaced.stderr).toContain('the object has been modified; please apply your changes to the latest version and try again');
  });

  test('get -w sees an update', async () => {
    const child = spawn(KUBECTL, ['--kubeconfig', adminConfig, '--cache-dir', join(dir, 'cache'), 'get', 'widgets', 'w1', '-w', '-o', 'custom-columns=NAME:.metadata.name,SIZE:.spec.size'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    try {
      const deadline = Date.now() + 15000;
      while (!/w1\s+5/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(out).toMatch(/w1\s+5/);
      await ok(['patch', 'widget', 'w1', '--type', 'merge', '-p', '{"spec":{"size":7}}']);
      while (!/w1\s+7/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(out.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toEqual(['NAME SIZE', 'w1 5', 'w1 7']);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });

  test('delete cascades to owned objects', async () => {
    const owner = JSON.parse(await ok(['get', 'widget', 'w1', '-o', 'json'])) as { metadata: { uid: string } };
    await ok(['apply', '-f', '-'], {
      stdin: JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'w1-owned', ownerReferences: [{ apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget', name: 'w1', uid: owner.metadata.uid }] },
        data: { a: 'b' },
      }),
    });
    expect(await ok(['get', 'configmap', 'w1-owned', '-o', 'name'])).toBe('configmap/w1-owned\n');
    expect(await ok(['delete', 'widget', 'w1'])).toBe(`widget.${WIDGET_GROUP} "w1" deleted\n`);
    const gone = await kubectl(['get', 'configmap', 'w1-owned']);
    expect(gone.code).toBe(1);
    expect(gone.stderr.trim()).toBe('Error from server (NotFound): configmaps "w1-owned" not found');
  });

  test('a ServiceAccount token is denied what its Role does not grant', async () => {
    await ok(['create', 'serviceaccount', 'reader']);
    await ok(['create', 'role', 'cm-reader', '--verb=get,list,watch', '--resource=configmaps']);
    await ok(['create', 'rolebinding', 'reader-cm', '--role=cm-reader', '--serviceaccount=default:reader']);
    const saConfig = join(dir, 'reader.kubeconfig');
    await emu.writeKubeconfig(saConfig, { token: emu.issueServiceAccountToken('default', 'reader') });
    const yes = await kubectl(['auth', 'can-i', 'list', 'configmaps'], { kubeconfig: saConfig });
    expect(yes).toMatchObject({ code: 0, stdout: 'yes\n' });
    const no = await kubectl(['auth', 'can-i', 'delete', 'configmaps'], { kubeconfig: saConfig });
    expect(no).toMatchObject({ code: 1, stdout: 'no\n' });
    expect((await kubectl(['auth', 'can-i', 'get', 'secrets'], { kubeconfig: saConfig })).stdout).toBe('no\n');
    await ok(['get', 'configmaps'], { kubeconfig: saConfig });
    const denied = await kubectl(['get', 'secrets'], { kubeconfig: saConfig });
    expect(denied.code).toBe(1);
    expect(denied.stderr.trim()).toBe(
      'Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:default:reader" cannot list resource "secrets" in API group "" in the namespace "default"',
    );
    const deniedCr = await kubectl(['get', 'widgets'], { kubeconfig: saConfig });
    expect(deniedCr.stderr).toContain(`widgets.${WIDGET_GROUP} is forbidden`);
  });
});
