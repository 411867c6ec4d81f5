import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

/** Every YAML document of every .yaml file in `dir` (sorted by file name); empty documents skipped. */
export async function loadYamlDir(dir: string): Promise<object[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
  const out: object[] = [];
  for (const f of files) out.push(...parseYamlDocs(await readFile(join(dir, f), 'utf8')));
  return out;
}

export function parseYamlDocs(text: string): object[] {
  return parseAllDocuments(text).map((d) => d.toJSON() as object | null).filter((o): o is object => o !== null && typeof o === 'object');
}
