export async function runDev(_opts: { scenario: string; once: boolean; env: Readonly<Record<string, string | undefined>> }): Promise<number> {
  process.stderr.write('mlops dev: not wired yet\n');
  return 1;
}
