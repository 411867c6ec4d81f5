// The API emulator as its own process for the latency measurements (a real API server is not in the client's
// event loop either): CRDs, the bench namespace and the held lock, then one line `kubeconfig: PATH` on stdout.
import { startBenchCluster, holdLock } from './cluster.ts';
import { SKIP_MODEL } from './skip.ts';

const root = process.argv[2] ?? process.cwd();
const cluster = await startBenchCluster(root);
holdLock(cluster, SKIP_MODEL);
process.stdout.write(`kubeconfig: ${cluster.kubeconfigPath}\n`);
const stop = (): void => { void cluster.close().then(() => process.exit(0)); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.once('disconnect', stop);
