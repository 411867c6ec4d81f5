import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startEmulator, type ClusterProfile, type KubeVersion } from '../dev/emulator/index.ts';
import { loadYamlDir } from '../dev/manifests.ts';
import { waitForSignal } from './signals.ts';

export async function runCluster(opts: {
  port: number; kubeconfig?: string | undefined; state?: string | undefined; profile?: ClusterProfile; kubeVersion?: KubeVersion;
}): Promise<number> {
  const emulator = await startEmulator({
    port: opts.port, ...(opts.state ? { statePath: opts.state } : {}),
    profile: opts.profile ?? 'openshift', ...(opts.kubeVersion ? { kubeVersion: opts.kubeVersion } : {}),
  });
  await emulator.applyManifests(await loadYamlDir('config/crds'));
  const kubeconfig = opts.kubeconfig ?? join(tmpdir(), `mlops-cluster-${emulator.port}.kubeconfig`);
  await emulator.writeKubeconfig(kubeconfig);
  process.stdout.write(`kubeconfig: ${kubeconfig}\n`);
  await waitForSignal();
  await emulator.close();
  return 0;
}
