// Starts the reads baseline like bench/echo/serve.js: faas-js-runtime's start() on a FIXED free port PORT (it maps
// port 0 to 8080), `config` pointing here so no func.yaml from the cwd is read. Needs KUBECONFIG and NAMESPACE.
import { dirname } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import runtime from 'faas-js-runtime';
import * as reads from './index.js';

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('PORT must be a fixed port (faas-js-runtime maps 0 to 8080)\n');
  process.exit(2);
}
const options = /** @type {import('faas-js-runtime').InvokerOptions} */ ({ port, config: dirname(fileURLToPath(import.meta.url)) });
await runtime.start(reads, options);
