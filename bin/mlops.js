#!/usr/bin/env node
// The `mlops` command. Node 24 runs the TypeScript sources directly (type stripping), so there is no build
// step between a checkout and a run. `npm ci` installs Node 24 (the `node` dev dependency) and npm/npx put it
// first on PATH.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`mlops needs Node 24 or newer (this is ${process.version}). Run it through npm: \`npx mlops ...\` after \`npm ci\`.\n`);
  process.exit(1);
}
await import('../cli/mlops.ts');
