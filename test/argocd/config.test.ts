import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jsonpatch from 'fast-json-patch';
import { parse, stringify } from 'yaml';
import { ARGOCD_DIR, CUSTOMIZATIONS_DIR, OUTPUT_FILE, collectHealthScripts, renderArgocdCmHealth } from '../../config/argocd/generate.ts';

const NVJ_KEY = 'resource.customizations.health.mlops.mlops.dev_NotebookValidationJob';
const MODELRUN_KEY = 'resource.customizations.health.lifecycle.mlops.dev_ModelRun';
const RELEASE_POINTER = '/spec/predictor/annotations/mlops.dev~1model-release';

function run(file: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

let work = '';
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'argocd-config-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('argocd-cm-health.yaml', () => {
  test('the committed file is exactly what generate.ts produces', async () => {
    expect(await readFile(OUTPUT_FILE, 'utf8')).toBe(renderArgocdCmHealth());
  });

  test('it is the argocd-cm ConfigMap with one key per health.lua, holding the script verbatim', async () => {
    const cm = parse(await readFile(OUTPUT_FILE, 'utf8')) as {
      apiVersion: string; kind: string; metadata: { name: string; namespace: string }; data: Record<string, string>;
    };
    expect([cm.apiVersion, cm.kind, cm.metadata.name, cm.metadata.namespace]).toEqual(['v1', 'ConfigMap', 'argocd-cm', 'argocd']);
    expect(Object.keys(cm.data)).toEqual([MODELRUN_KEY, NVJ_KEY]);
    expect(cm.data[NVJ_KEY]).toBe(
      await readFile(join(CUSTOMIZATIONS_DIR, 'mlops.mlops.dev', 'NotebookValidationJob', 'health.lua'), 'utf8'),
    );
    expect(cm.data[MODELRUN_KEY]).toBe(
      await readFile(join(CUSTOMIZATIONS_DIR, 'lifecycle.mlops.dev', 'ModelRun', 'health.lua'), 'utf8'),
    );
    expect(collectHealthScripts()).toEqual(cm.data);
  });

  test('running generate.ts as a script writes the same text', async () => {
    const out = join(work, 'generated.yaml');
    const result = await run(join(process.cwd(), 'node_modules', '.bin', 'node'), [join(ARGOCD_DIR, 'generate.ts'), '--out', out]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`wrote ${out}\n`);
    expect(result.code).toBe(0);
    expect(await readFile(out, 'utf8')).toBe(await readFile(OUTPUT_FILE, 'utf8'));
  });

  test('kubectl patch --patch-file adds both scripts and keeps the existing argocd-cm keys', async () => {
    const existing = join(work, 'argocd-cm.yaml');
    await writeFile(existing, stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'argocd-cm', namespace: 'argocd' },
      data: { url: 'https://argocd.example.com', 'resource.customizations.health.foo.io_Bar': 'return {status="Healthy"}' },
    }));
    const result = await run('/usr/bin/kubectl', ['patch', '--local', '-f', existing, '--type', 'strategic',
      '--patch-file', OUTPUT_FILE, '-o', 'json']);
    expect(result.code).toBe(0);
    const patched = JSON.parse(result.stdout) as { data: Record<string, string> };
    expect(Object.keys(patched.data).sort()).toEqual(
      ['resource.customizations.health.foo.io_Bar', MODELRUN_KEY, NVJ_KEY, 'url'].sort(),
    );
    expect(patched.data[NVJ_KEY]).toBe(collectHealthScripts()[NVJ_KEY]);
  });
});

describe('application-example.yaml', () => {
  type Application = {
    apiVersion: string;
    kind: string;
    spec: {
      syncPolicy: { automated: { selfHeal: boolean }; syncOptions: string[] };
      ignoreDifferences: { group: string; kind: string; jsonPointers: string[]; jqPathExpressions: string[] }[];
    };
  };
  const isvc = {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name: 'anomaly-detector', namespace: 'self-healing-platform' },
    spec: {
      predictor: {
        annotations: { 'mlops.dev/model-release': 'mr-anomaly-detector-20250601', 'team': 'platform' },
        model: { modelFormat: { name: 'sklearn' }, storageUri: 'pvc://model-storage-pvc/anomaly-detector' },
      },
    },
  };
  const normalized = {
    ...isvc,
    spec: { predictor: { annotations: { team: 'platform' }, model: isvc.spec.predictor.model } },
  };
  let app: Application;
  beforeAll(async () => {
    app = parse(await readFile(join(ARGOCD_DIR, 'application-example.yaml'), 'utf8')) as Application;
  });

  test('is an Application that self-heals yet respects ignoreDifferences on sync', () => {
    expect([app.apiVersion, app.kind]).toEqual(['argoproj.io/v1alpha1', 'Application']);
    expect(app.spec.syncPolicy.automated.selfHeal).toBe(true);
    expect(app.spec.syncPolicy.syncOptions).toContain('RespectIgnoreDifferences=true');
    expect(app.spec.ignoreDifferences).toEqual([{
      group: 'serving.kserve.io',
      kind: 'InferenceService',
      jsonPointers: [RELEASE_POINTER],
      jqPathExpressions: ['.spec.predictor.annotations["mlops.dev/model-release"]'],
    }]);
  });

  test('the JSON pointer removes exactly the release annotation (RFC 6901, ~1 is /)', () => {
    const pointer = app.spec.ignoreDifferences[0]?.jsonPointers[0] ?? '';
    const { newDocument } = jsonpatch.applyOperation(structuredClone(isvc), { op: 'remove', path: pointer });
    expect(newDocument).toEqual(normalized);
  });

  test('the jq path expression, applied with del() as Argo CD does, removes exactly the release annotation', async () => {
    const expression = app.spec.ignoreDifferences[0]?.jqPathExpressions[0] ?? '';
    const result = await run('/usr/bin/jq', ['-c', `del(${expression})`], JSON.stringify(isvc));
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual(normalized);
  });

  test('a storageUri change is still drift after normalization', async () => {
    const expression = app.spec.ignoreDifferences[0]?.jqPathExpressions[0] ?? '';
    const moved = structuredClone(isvc);
    moved.spec.predictor.model.storageUri = 'pvc://model-storage-pvc/other';
    const result = await run('/usr/bin/jq', ['-c', `del(${expression})`], JSON.stringify(moved));
    expect(JSON.parse(result.stdout)).not.toEqual(normalized);
  });
});
