// The PreSync wait script, run with /bin/sh and the real kubectl against the emulator.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { NAMESPACE, startTestCluster, type TestCluster } from '../../test/kit.ts';
import { summariseNotebooks } from '../../functions/argocd-sync/status.ts';

const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';
const SCRIPT = 'dev/argocd/wait-for-wave.sh';
const NVJ = { group: 'mlops.mlops.dev', version: 'v1alpha1', resource: 'notebookvalidationjobs' };

interface Run { code: number; stdout: string; stderr: string; ms: number }

describe('wait-for-wave.sh with the real kubectl', () => {
  let cluster: TestCluster;
  beforeAll(async () => { cluster = await startTestCluster(); });
  afterAll(async () => { await cluster.close(); });

  function nvj(name: string, wave: string, state: 'complete' | 'failed' | 'pending'): void {
    const annotations: Record<string, string> = { 'argocd.argoproj.io/sync-wave': wave };
    if (state === 'complete') annotations['mlops.dev/wave-complete'] = 'true';
    if (state === 'failed') annotations['mlops.dev/wave-failed'] = 'true';
    cluster.emulator.store.create(NVJ, {
      apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob', metadata: { name, namespace: NAMESPACE, annotations },
      spec: { notebook: { git: { url: 'https://example.com/nb.git', ref: 'main' }, path: 'nb.ipynb' }, podConfig: { containerImage: 'quay.io/example/nb:1' } },
    });
  }

  function run(wave: string, timeoutSeconds = 2): Promise<Run> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
      execFile('/bin/sh', [SCRIPT], {
        env: { PATH: '/usr/bin:/bin', HOME: cluster.dir, KUBECONFIG: cluster.kubeconfigPath, KUBECTL, WAVE: wave, NAMESPACE, TIMEOUT_SECONDS: String(timeoutSeconds), INTERVAL_SECONDS: '0.2' },
        timeout: 30_000,
      }, (err, stdout, stderr) => {
        if (err && typeof (err as { code?: unknown }).code !== 'number') { reject(new Error(`could not run ${SCRIPT}: ${err.message}`)); return; }
        resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr, ms: Date.now() - started });
      });
    });
  }

  test('every NVJ of the wave complete: exit 0; other waves are ignored', async () => {
    nvj('w1-a', '1', 'complete');
    nvj('w1-b', '1', 'complete');
    nvj('w2-a', '2', 'pending');
    const r = await run('1');
    expect(r).toMatchObject({ code: 0, stdout: 'wave 1 complete: 2 of 2 notebook validation jobs\n' });
  });

  test('one failed NVJ: exit 1 at once, naming it', async () => {
    nvj('w3-a', '3', 'complete');
    nvj('w3-b', '3', 'failed');
    nvj('w3-c', '3', 'pending');
    const r = await run('3', 20);
    expect(r).toMatchObject({ code: 1, stdout: 'wave 3 failed: w3-b\n' });
    expect(r.ms).toBeLessThan(10_000);
  });

  test('a pending NVJ past the deadline: exit 1 with a timeout', async () => {
    nvj('w4-a', '4', 'pending');
    const r = await run('4', 2);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('wave 4: timed out after 2s');
    expect(r.stdout).toContain('wave 4: 0 of 1 complete; waiting for: w4-a');
    expect(r.ms).toBeGreaterThanOrEqual(2000);
  });

  test('keeps polling until the last NVJ completes; an empty wave is not complete', async () => {
    nvj('w5-a', '5', 'complete');
    nvj('w5-b', '5', 'pending');
    const running = run('5', 20);
    await new Promise((r) => setTimeout(r, 800));
    cluster.emulator.store.patchMerge(NVJ, { name: 'w5-b', namespace: NAMESPACE }, { metadata: { annotations: { 'mlops.dev/wave-complete': 'true' } } });
    const r = await running;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('wave 5: 1 of 2 complete; waiting for: w5-b');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('wave 5 complete: 2 of 2 notebook validation jobs');
    const empty = await run('9', 1);
    expect(empty.code).toBe(1);
    expect(empty.stdout).toContain('wave 9: 0 of 0 complete; waiting for: (no jobs yet)');
  });

  test('a WAVE that is not a number is refused', async () => {
    const r = await run('1;rm');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('WAVE must be a sync-wave number');
  });
});

describe('Argo CD example manifests', () => {
  test('the PreSync Job carries the same script, reads block-wave, and its Role only reads NVJs', () => {
    interface Doc { kind: string; metadata: { annotations: Record<string, string> }; data?: Record<string, string>; rules?: unknown;
      spec?: { template: { metadata: { annotations: Record<string, string> }; spec: { containers: Array<{ env: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }> }> } } } }
    const docs = parseAllDocuments(readFileSync('config/argocd/presync-wait-job.yaml', 'utf8')).map((d) => d.toJS() as Doc);
    expect(docs.map((d) => d.kind)).toEqual(['ServiceAccount', 'Role', 'RoleBinding', 'ConfigMap', 'Job']);
    for (const d of docs) expect(d.metadata.annotations['argocd.argoproj.io/hook']).toBe('PreSync');
    expect(docs[3]?.data?.['wait-for-wave.sh']).toBe(readFileSync(SCRIPT, 'utf8'));
    expect(docs[1]?.rules).toEqual([{ apiGroups: ['mlops.mlops.dev'], resources: ['notebookvalidationjobs'], verbs: ['get', 'list'] }]);
    const job = docs[4];
    expect(job?.spec?.template.metadata.annotations['mlops.dev/block-wave']).toBe(job?.metadata.annotations['mlops.dev/block-wave']);
    const env = job?.spec?.template.spec.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === 'WAVE')?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.annotations['mlops.dev/block-wave']");
  });

  test("the notification triggers match argocd-sync's notebook-status JSON", () => {
    const cm = parseAllDocuments(readFileSync('config/argocd/notifications-cm.yaml', 'utf8'))[0]?.toJS() as { data: Record<string, string> };
    const when = (key: string) => ((parseAllDocuments(cm.data[key] ?? '')[0]?.toJS() as Array<{ when: string }>)[0]?.when ?? '');
    const fragment = (w: string) => /contains '([^']+)'/.exec(w)?.[1] ?? '';
    const failedWhen = when('trigger.on-notebook-validation-failed');
    const recoveredWhen = when('trigger.on-notebook-validation-recovered');
    const now = new Date('2026-11-22T10:00:00Z');
    const healthy = JSON.stringify(summariseNotebooks([{ metadata: { name: 'a' }, status: { phase: 'Succeeded' } }], now));
    const failing = JSON.stringify(summariseNotebooks([{ metadata: { name: 'a' }, status: { phase: 'Failed' } }], now));
    expect(failedWhen).toContain('not (');
    expect(healthy.includes(fragment(failedWhen))).toBe(true); // "not contains" → no notification
    expect(failing.includes(fragment(failedWhen))).toBe(false); // → notification
    expect(healthy.includes(fragment(recoveredWhen))).toBe(true);
    expect(failing.includes(fragment(recoveredWhen))).toBe(false);
    expect(cm.data['template.notebook-validation-failed']).toContain('mlops.dev/notebook-status');
  });
});
