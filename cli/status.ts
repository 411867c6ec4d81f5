export async function runStatus(_opts: { env: Readonly<Record<string, string | undefined>>; namespace?: string | undefined }): Promise<number> {
  process.stderr.write('mlops status: not implemented yet\n');
  return 1;
}
export async function runRuns(_opts: { env: Readonly<Record<string, string | undefined>>; namespace?: string | undefined; model?: string | undefined }): Promise<number> {
  process.stderr.write('mlops runs: not implemented yet\n');
  return 1;
}
