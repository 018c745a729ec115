// Where the control-plane binaries live. build.sh and this file must agree:
// both derive `<cache>/mtkube/k8s-<kubernetes version>-<sha256(go.mod + build.sh)[:12]>/bin`,
// so a bump of any pinned tool or build flag points tests at a fresh directory.
// MTKUBE_K8S_BIN overrides the whole path (for binaries built elsewhere).
import { createHash } from 'node:crypto';
import { access, constants, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const clusterDir: string = dirname(fileURLToPath(import.meta.url));

/** Binaries the control plane cannot start without. */
export const requiredBinaries = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kubectl',
  'helm',
] as const;

/** Binaries that add fake nodes and scheduling; used when all are present. */
export const kwokBinaries = ['kube-scheduler', 'kwok'] as const;

export type BinaryName =
  | (typeof requiredBinaries)[number]
  | (typeof kwokBinaries)[number]
  | 'prometheus'
  | 'promtool';

export interface ToolVersions {
  readonly kubernetes: string;
  /** Changes whenever go.mod or build.sh does. */
  readonly toolsetHash: string;
}

export async function readToolVersions(): Promise<ToolVersions> {
  const goMod = await readFile(join(clusterDir, 'go.mod'));
  const buildScript = await readFile(join(clusterDir, 'build.sh'));
  const match = /^\s*k8s\.io\/kubernetes\s+(v\S+)/m.exec(goMod.toString('utf8'));
  if (!match?.[1]) throw new Error(`no k8s.io/kubernetes requirement in ${clusterDir}/go.mod`);
  return {
    kubernetes: match[1],
    toolsetHash: createHash('sha256').update(goMod).update(buildScript).digest('hex').slice(0, 12),
  };
}

/** The directory build.sh fills; it may not exist yet. */
export async function clusterBinDir(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const override = env.MTKUBE_K8S_BIN;
  if (override) return override;
  const { kubernetes, toolsetHash } = await readToolVersions();
  const cacheRoot = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(cacheRoot, 'mtkube', `k8s-${kubernetes}-${toolsetHash}`, 'bin');
}

/** The names among `names` that are not executable files in `binDir`. */
export async function missingBinaries(binDir: string, names: readonly BinaryName[]): Promise<BinaryName[]> {
  const missing: BinaryName[] = [];
  for (const name of names) {
    try {
      await access(join(binDir, name), constants.X_OK);
    } catch {
      missing.push(name);
    }
  }
  return missing;
}
