// PersistentVolumeClaims of the simulated cluster are folders on disk: `<stateDir>/pvc/<claim>`.
// Pod specs (Jobs, NVJ podConfig) are mapped mount by mount, subPath included, to local paths.
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const CLAIM_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** The local folder of a PVC, created on demand. */
export function pvcDir(stateDir: string, claim: string): string {
  if (!CLAIM_NAME.test(claim)) throw new Error(`invalid PVC claim name ${JSON.stringify(claim)}`);
  const dir = path.join(stateDir, 'pvc', claim);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface VolumeMountSpec {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}

export interface VolumeSpec {
  name: string;
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  configMap?: { name: string };
  [key: string]: unknown;
}

export interface PodSpecLike {
  volumes?: VolumeSpec[];
  containers?: Array<{ volumeMounts?: VolumeMountSpec[] }>;
  /** NVJ podConfig carries mounts at the top level. */
  volumeMounts?: VolumeMountSpec[];
}

export interface ResolvedMount {
  mountPath: string;
  localPath: string;
  claimName?: string;
  configMap?: string;
  readOnly: boolean;
}

export interface ResolveOptions {
  stateDir: string;
  /** Local folder for a ConfigMap volume (the scripts ConfigMap → config/jobs). */
  configMapDir?: (name: string) => string | undefined;
}

function safeSubPath(subPath: string): string {
  const norm = path.posix.normalize(subPath);
  if (path.posix.isAbsolute(subPath) || norm === '..' || norm.startsWith('../')) throw new Error(`invalid subPath ${JSON.stringify(subPath)}`);
  return norm === '.' ? '' : norm;
}

/**
 * Each container volumeMount (and podConfig.volumeMounts) backed by a PVC or a known ConfigMap → its local
 * path. A mount with subPath gets `<pvc dir>/<subPath>`, created like the kubelet does.
 */
export function resolveMounts(spec: PodSpecLike, opts: ResolveOptions): ResolvedMount[] {
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  const mounts = [...(spec.volumeMounts ?? []), ...(spec.containers ?? []).flatMap((c) => c.volumeMounts ?? [])];
  const out: ResolvedMount[] = [];
  for (const m of mounts) {
    const volume = volumes.get(m.name);
    if (!volume) continue;
    const readOnly = m.readOnly === true || volume.persistentVolumeClaim?.readOnly === true;
    if (volume.persistentVolumeClaim) {
      const base = pvcDir(opts.stateDir, volume.persistentVolumeClaim.claimName);
      const sub = m.subPath ? safeSubPath(m.subPath) : '';
      const localPath = sub ? path.join(base, sub) : base;
      mkdirSync(localPath, { recursive: true });
      out.push({ mountPath: m.mountPath, localPath, claimName: volume.persistentVolumeClaim.claimName, readOnly });
    } else if (volume.configMap) {
      const dir = opts.configMapDir?.(volume.configMap.name);
      if (dir) out.push({ mountPath: m.mountPath, localPath: dir, configMap: volume.configMap.name, readOnly: true });
    }
  }
  // Longest mount path first, so /mnt/a/b wins over /mnt/a.
  return out.sort((a, b) => b.mountPath.length - a.mountPath.length);
}

/** A container path → local path through the mounts, or undefined when no mount covers it. */
export function localPathFor(containerPath: string, mounts: readonly ResolvedMount[]): string | undefined {
  for (const m of mounts) {
    const mp = m.mountPath.replace(/\/+$/, '');
    if (containerPath === mp) return m.localPath;
    if (containerPath.startsWith(`${mp}/`)) {
      const rest = safeSubPath(containerPath.slice(mp.length + 1));
      return rest ? path.join(m.localPath, rest) : m.localPath;
    }
  }
  return undefined;
}

/** Env values that are paths under a mount are rewritten to the local path; everything else is kept. */
export function rewriteEnv(env: Record<string, string>, mounts: readonly ResolvedMount[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[k] = (v.startsWith('/') ? localPathFor(v, mounts) : undefined) ?? v;
  return out;
}
