import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { STEPS } from '../functions/registry.ts';

// Every environment variable a function reads, parsed once at start-up (init). Nothing else reads process.env.
const optionalNonEmpty = z.string().trim().min(1).optional().catch(undefined);

export const Settings = z.object({
  step: z.string().regex(/^[a-z][a-z0-9-]*$/, 'FUNCTION must name a step').optional(),
  namespace: z.string().min(1),
  catalogPath: z.string().min(1),
  kubeconfigPath: optionalNonEmpty,
  sinkUrl: z.url().optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  port: z.coerce.number().int().min(0).max(65535),
  /** `dev` only under `mlops dev`: the one place a simulated gate report may be accepted. */
  mode: z.enum(['cluster', 'dev']),
  secrets: z.object({
    driftIntakeToken: optionalNonEmpty,
    githubWebhookSecret: optionalNonEmpty,
    slackWebhookUrl: optionalNonEmpty,
    smtpUrl: optionalNonEmpty,
    smtpFrom: optionalNonEmpty,
    /** Every Secret key a step declares (functions/<step>/step.ts) that is set, by its variable name. */
    declared: z.record(z.string(), z.string()),
  }),
  /** Broker delivery budget seen by watchdog arithmetic and notify's dead-letter reasoning. */
  maxBodyBytes: z.coerce.number().int().min(1024).max(64 * 1024 * 1024),
  /** How long the reconcile lets the event path act on new evidence before it pokes a step (docs/run-lifecycle.md). */
  reconcileGraceSeconds: z.coerce.number().int().min(0).max(3600),
  /**
   * How long SIGTERM waits for in-flight handlers before the process exits (docs/runtime.md). Keep it below
   * the pod's terminationGracePeriodSeconds (Knative sets that to the revision's timeoutSeconds, 300 s by default).
   */
  shutdownGraceMs: z.coerce.number().int().min(0).max(3_600_000),
  /**
   * PEM bundle that TLS to the S3 endpoint is verified against besides the system roots, e.g. OpenShift's service
   * CA (`/var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt`) for an in-cluster endpoint (docs/storage.md).
   */
  s3CaBundlePath: optionalNonEmpty,
});
export type Settings = z.infer<typeof Settings>;

const IN_CLUSTER_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The Secret keys the registered steps declare: what the Services get from the Secret (config/render.ts). */
export const DECLARED_SECRET_KEYS: readonly string[] = [...new Set(STEPS.flatMap((s) => s.secrets))];

/** `secretKeys`: the declared Secret keys to read (default: every registered step's). */
export function loadSettings(env: Readonly<Record<string, string | undefined>>, secretKeys: readonly string[] = DECLARED_SECRET_KEYS): Settings {
  const declared: Record<string, string> = {};
  for (const key of secretKeys) {
    const value = env[key]?.trim();
    if (value) declared[key] = value;
  }
  const result = Settings.safeParse({
    step: env.FUNCTION || undefined,
    namespace: env.NAMESPACE || env.POD_NAMESPACE || readInClusterNamespace() || 'default',
    catalogPath: env.MODEL_CATALOG || 'config/models.yaml',
    kubeconfigPath: env.KUBECONFIG,
    sinkUrl: env.K_SINK || undefined,
    logLevel: env.LOG_LEVEL || 'info',
    port: env.PORT || 8080,
    mode: env.MLOPS_MODE === 'dev' ? 'dev' : 'cluster',
    secrets: {
      driftIntakeToken: env.DRIFT_INTAKE_TOKEN,
      githubWebhookSecret: env.GITHUB_WEBHOOK_SECRET,
      slackWebhookUrl: env.SLACK_WEBHOOK_URL,
      smtpUrl: env.SMTP_URL,
      smtpFrom: env.SMTP_FROM,
      declared,
    },
    maxBodyBytes: env.MAX_BODY_BYTES || 1024 * 1024,
    reconcileGraceSeconds: env.RECONCILE_GRACE_SECONDS || 30,
    shutdownGraceMs: env.SHUTDOWN_GRACE_SECONDS ? Number(env.SHUTDOWN_GRACE_SECONDS) * 1000 : 30_000,
    s3CaBundlePath: env.S3_CA_BUNDLE,
  });
  if (!result.success) {
    // Name the variable, never echo its value (it may be a secret).
    throw new Error(`invalid settings: ${result.error.issues.map((i) => i.path.join('.') + ': ' + i.message).join('; ')}`);
  }
  return result.data;
}

/** Every secret value, for the logger's last-line-of-defence censor. */
export function secretValues(settings: Settings): string[] {
  const { declared, ...named } = settings.secrets;
  const out: string[] = [];
  for (const v of new Set([...Object.values(named), ...Object.values(declared)])) {
    if (!v) continue;
    out.push(v);
    // An SMTP URL's password alone must not leak either.
    try { const u = new URL(v); if (u.password) out.push(decodeURIComponent(u.password)); } catch { /* not a URL */ }
  }
  return out;
}

function readInClusterNamespace(): string | undefined {
  try { return readFileSync(IN_CLUSTER_NAMESPACE, 'utf8').trim() || undefined; } catch { return undefined; }
}
