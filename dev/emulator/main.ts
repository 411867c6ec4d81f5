// `node dev/emulator/main.ts --port N --kubeconfig PATH [--state FILE] [--no-rbac]`: the emulator alone.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startEmulator } from './index.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await yamlFiles(p)));
    else if (/\.ya?ml$/.test(entry.name)) out.push(p);
  }
  return out.sort();
}

async function main(): Promise<void> {
  const port = Number(arg('port') ?? '0');
  const kubeconfig = resolve(arg('kubeconfig') ?? '.dev/kubeconfig');
  const statePath = arg('state');
  const emulator = await startEmulator({ port, rbac: !process.argv.includes('--no-rbac'), ...(statePath ? { statePath } : {}) });
  const crdDir = resolve('config/crds');
  if (existsSync(crdDir)) {
    const docs: object[] = [];
    for (const file of await yamlFiles(crdDir)) {
      for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
        const value = doc.toJS() as unknown;
        if (value && typeof value === 'object' && (value as { kind?: unknown }).kind === 'CustomResourceDefinition') docs.push(value);
      }
    }
    await emulator.applyManifests(docs);
  }
  await emulator.writeKubeconfig(kubeconfig);
  process.stdout.write(`kubeconfig: ${kubeconfig}\nserver: ${emulator.url}\n`);
  const stop = (): void => {
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
