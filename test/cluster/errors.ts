// Errors of the test control plane, with stable codes so callers (the shared
// cluster's skip logic, run-cluster.ts) can tell them apart.

export class ClusterBinariesMissingError extends Error {
  readonly code = 'ERR_CLUSTER_BINARIES_MISSING';
  readonly binDir: string;
  readonly missing: readonly string[];
  constructor(binDir: string, missing: readonly string[]) {
    super(
      `control-plane binaries missing in ${binDir}: ${missing.join(', ')}; ` +
        'build them with `bash test/cluster/build.sh`',
    );
    this.name = 'ClusterBinariesMissingError';
    this.binDir = binDir;
    this.missing = missing;
  }
}

export class ClusterStartError extends Error {
  readonly code = 'ERR_CLUSTER_START';
  constructor(message: string) {
    super(message);
    this.name = 'ClusterStartError';
  }
}
