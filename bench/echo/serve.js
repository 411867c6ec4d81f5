// Starts the echo function the way `func` does: faas-js-runtime's start() on PORT. Pass a FIXED free port:
// start() maps port 0 to 8080. Log level: its default (warn). `config` points at this folder so no func.yaml from the cwd is read.
import { dirname } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import runtime from 'faas-js-runtime';
import * as echo from './index.js';

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('PORT must be a fixed port (faas-js-runtime maps 0 to 8080)\n');
  process.exit(2);
}
// `config` (where func.yaml is looked for) is read by start() but missing from its typings.
const options = /** @type {import('faas-js-runtime').InvokerOptions} */ ({ port, config: dirname(fileURLToPath(import.meta.url)) });
await runtime.start(echo, options);
