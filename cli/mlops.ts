// The `mlops` command line (docs/design.md).
import { parseArgs } from 'node:util';
import { KubeVersions, isClusterProfile, isKubeVersion, type ClusterProfile, type KubeVersion } from '../dev/emulator/admission.ts';
import { DEFAULT_SCALE_DOWN_DELAY } from '../config/warmsteps.ts';

/** `--profile` and `--kube-version` of `dev` and `cluster` (docs/openshift.md). */
function clusterFlags(values: { profile?: string | undefined; 'kube-version'?: string | undefined }): { profile?: ClusterProfile; kubeVersion?: KubeVersion } {
  const out: { profile?: ClusterProfile; kubeVersion?: KubeVersion } = {};
  const profile = values.profile;
  if (profile !== undefined) {
    if (!isClusterProfile(profile)) throw new Error(`--profile must be openshift or kubernetes, not ${JSON.stringify(profile)}`);
    out.profile = profile;
  }
  const version = values['kube-version'];
  if (version !== undefined) {
    if (!isKubeVersion(version)) throw new Error(`--kube-version must be one of ${KubeVersions.join(', ')}, not ${JSON.stringify(version)}`);
    out.kubeVersion = version;
  }
  return out;
}
const CLUSTER_OPTIONS = { profile: { type: 'string' }, 'kube-version': { type: 'string' } } as const;

const USAGE = `usage: mlops <command> [options]

  dev [--scenario NAME] [--once] [--keep-state] [--profile openshift|kubernetes] [--kube-version 1.26|1.32]
      [--tick-seconds N] [--rollout raw|serverless] [--drain-seconds N] [--ready-delay-seconds N] [--restart-pod]
      [--drop-events PERCENT] [--coalesce] [--reorder] [--seed N]
      [--api-faults PERCENT] [--crash-rate PERCENT] [--max-deliveries N] [--queued-request]
                                     the whole system locally on the Kubernetes API emulator (profile default openshift)
  cluster [--port N] [--kubeconfig PATH] [--state FILE] [--profile openshift|kubernetes] [--kube-version 1.26|1.32]
                                     the Kubernetes API emulator alone (profile default openshift)
  serve STEP [--port N]              one function over HTTP (KUBECONFIG, MODEL_CATALOG, K_SINK, secrets from env)
  train MODEL [--hours N] [--data-source S] [--ref R] [--gpu] [--force] [--broker URL] [--catalog FILE]
                                     send training.requested (trigger manual) to the broker; refused
                                     (exit 2) when start-training would refuse it, or the model is paused
                                     (--force trains it anyway)
  pause MODEL [--reason TEXT] / resume MODEL
                                     stop / restart automatic training of a model (docs/day2.md)
  pin MODEL [RELEASE] / unpin MODEL  keep RELEASE (default: the served one) served; runs train and gate, none promoted
  rollback MODEL [--to RELEASE] [--force]
                                     serve an earlier kept, approved release again, verified like a promotion
  bootstrap [--broker URL]           request the storage bootstrap (ADR-023: S3 connectivity, placeholder models,
                                     InferenceService reconcile, serving check); mlops status shows the outcome
  status                             per model: served release, age, last run, next schedule; the last storage check
  runs MODEL                         one model's run timelines
  render [--out DIR] [--namespace NS] [--image IMG] [--sender-auth] [--warm-steps [--scale-down-delay 10m]]
         [--platform openshift-aiops-platform] [--training-image IMG] [--training-service-account SA] [--prometheus-url URL]
                                     the Kubernetes manifests for the catalog (EventPolicies with --sender-auth;
                                     Knative scale-down-delay on the steps a run calls in quick succession with --warm-steps)
  doctor [--namespace NS] [--output json]
                                     check an install through your kubeconfig: APIs, Broker, InferenceServices,
                                     PVCs, secrets (names only), each ServiceAccount's permissions, dry-run creates
                                     as each creator, leftovers of the old platform; exit 1 on any failure
`;

/** `mlops dev` rollout and ApiServerSource fidelity flags (parsed and validated by cli/dev.ts). */
const FIDELITY_FLAGS = {
  rollout: { type: 'string' }, 'drain-seconds': { type: 'string' }, 'ready-delay-seconds': { type: 'string' }, 'restart-pod': { type: 'boolean' },
  'drop-events': { type: 'string' }, coalesce: { type: 'boolean' }, reorder: { type: 'boolean' }, seed: { type: 'string' },
  'api-faults': { type: 'string' }, 'crash-rate': { type: 'string' }, 'max-deliveries': { type: 'string' }, 'queued-request': { type: 'boolean' },
} as const;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'dev': {
      const { values } = parseArgs({ args: rest, options: { scenario: { type: 'string' }, once: { type: 'boolean' }, port: { type: 'string' }, 'keep-state': { type: 'boolean' }, 'tick-seconds': { type: 'string' }, ...CLUSTER_OPTIONS, ...FIDELITY_FLAGS } });
      const { runDev, fidelityOptions } = await import('./dev.ts');
      const tick = values['tick-seconds'] === undefined ? undefined : Number(values['tick-seconds']);
      if (tick !== undefined && !(Number.isFinite(tick) && tick > 0)) throw new Error('--tick-seconds must be a positive number');
      return runDev({ scenario: values.scenario ?? 'happy', once: values.once ?? false, keepState: values['keep-state'] ?? false, ...(tick !== undefined ? { tickSeconds: tick } : {}), ...clusterFlags(values), env: process.env, ...fidelityOptions(values) });
    }
    case 'cluster': {
      const { values } = parseArgs({ args: rest, options: { port: { type: 'string' }, kubeconfig: { type: 'string' }, state: { type: 'string' }, ...CLUSTER_OPTIONS } });
      const { runCluster } = await import('./cluster.ts');
      return runCluster({ port: values.port ? Number(values.port) : 0, kubeconfig: values.kubeconfig, state: values.state, ...clusterFlags(values) });
    }
    case 'serve': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { port: { type: 'string' } } });
      const { serveFromEnv } = await import('./serve.ts');
      const running = await serveFromEnv(process.env, { ...(positionals[0] ? { step: positionals[0] } : {}), ...(values.port ? { port: Number(values.port) } : {}) });
      process.stdout.write(`serving ${positionals[0] ?? process.env.FUNCTION ?? ''} on ${running.url}\n`);
      // faas-js-runtime's signal handler drains in-flight handlers and exits (runtime/faas.ts).
      return new Promise<number>(() => {});
    }
    case 'train': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: {
        hours: { type: 'string' }, 'data-source': { type: 'string' }, ref: { type: 'string' }, gpu: { type: 'boolean' }, broker: { type: 'string' }, catalog: { type: 'string' },
        force: { type: 'boolean' },
      } });
      const { runTrain } = await import('./train.ts');
      return runTrain({ model: positionals[0], hours: values.hours, dataSource: values['data-source'], ref: values.ref, gpu: values.gpu ?? false, force: values.force ?? false, env: process.env,
        broker: values.broker ?? process.env.MLOPS_BROKER ?? process.env.K_SINK, catalogPath: values.catalog ?? process.env.MODEL_CATALOG ?? 'config/models.yaml' });
    }
    case 'pause':
    case 'resume':
    case 'pin':
    case 'unpin': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: {
        reason: { type: 'string' }, namespace: { type: 'string' }, catalog: { type: 'string' },
      } });
      if (values.reason !== undefined && command !== 'pause') throw new Error('--reason belongs to pause');
      const { runControl } = await import('./day2.ts');
      return runControl(command, { model: positionals[0], release: positionals[1], reason: values.reason },
        { env: process.env, namespace: values.namespace, catalogPath: values.catalog ?? process.env.MODEL_CATALOG ?? 'config/models.yaml' });
    }
    case 'rollback': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: {
        to: { type: 'string' }, force: { type: 'boolean' }, reason: { type: 'string' }, broker: { type: 'string' }, namespace: { type: 'string' }, catalog: { type: 'string' },
      } });
      const { runRollback } = await import('./day2.ts');
      return runRollback({ env: process.env, model: positionals[0], to: values.to, force: values.force ?? false, reason: values.reason, namespace: values.namespace,
        broker: values.broker ?? process.env.MLOPS_BROKER, catalogPath: values.catalog ?? process.env.MODEL_CATALOG ?? 'config/models.yaml' });
    }
    case 'bootstrap': {
      const { values } = parseArgs({ args: rest, options: { broker: { type: 'string' } }, allowPositionals: false });
      const { runBootstrapRequest } = await import('./bootstrap.ts');
      return runBootstrapRequest({ broker: values.broker ?? process.env.MLOPS_BROKER ?? process.env.K_SINK });
    }
    case 'status':
    case 'runs': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { namespace: { type: 'string' } } });
      const { runStatus, runRuns } = await import('./status.ts');
      return command === 'status' ? runStatus({ env: process.env, namespace: values.namespace }) : runRuns({ env: process.env, namespace: values.namespace, model: positionals[0] });
    }
    case 'render': {
      const { values } = parseArgs({ args: rest, options: {
        out: { type: 'string' }, catalog: { type: 'string' }, namespace: { type: 'string' }, image: { type: 'string' }, platform: { type: 'string' },
        'training-image': { type: 'string' }, 'training-service-account': { type: 'string' }, 'prometheus-url': { type: 'string' }, 'sender-auth': { type: 'boolean' },
        'warm-steps': { type: 'boolean' }, 'scale-down-delay': { type: 'string' },
      } });
      const { runRender } = await import('./render.ts');
      return runRender({
        out: values.out, catalogPath: values.catalog ?? process.env.MODEL_CATALOG ?? 'config/models.yaml', namespace: values.namespace, image: values.image,
        platform: values.platform, trainingImage: values['training-image'], trainingServiceAccount: values['training-service-account'],
        prometheusUrl: values['prometheus-url'], senderAuth: values['sender-auth'] ?? false,
        warmSteps: values['warm-steps'] === true || values['scale-down-delay'] !== undefined ? values['scale-down-delay'] ?? DEFAULT_SCALE_DOWN_DELAY : undefined,
      });
    }
    case 'doctor': {
      const { values } = parseArgs({ args: rest, options: { namespace: { type: 'string' }, output: { type: 'string', short: 'o' }, catalog: { type: 'string' } } });
      const { runDoctor } = await import('./doctor.ts');
      return runDoctor({ env: process.env, namespace: values.namespace, output: values.output, catalogPath: values.catalog });
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      process.stderr.write(`mlops: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`mlops: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
