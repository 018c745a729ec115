// Requests and limits for the proxy container, derived from what the spec asks the proxy to carry.
// Without them a connection flood can take the node's memory and the scheduler places pods blind.
//
// The budget per connection is the proxy's measured idle cost (about 18 KiB RSS per idle
// connection, `npm run bench`) plus room for the socket buffers of a busy one; the base per
// worker and for the primary cover Node itself. Memory is requested for the base and limited for
// the worst case the spec allows (every worker full); CPU is requested per worker and never
// limited, since a CPU limit only adds latency (throttling) to a relay that is idle most of the time.
// podTemplate.resources overrides any single value.
import type { IntOrString } from '../api/types.js';

export const RESOURCE_MODEL = {
  primaryMiB: 64,
  workerBaseMiB: 48,
  perConnectionKiB: 32,
  cpuMillisPerWorker: 100,
} as const;

type ResourceMap = Record<string, IntOrString>;
export interface Resources {
  requests: ResourceMap;
  limits: ResourceMap;
}

/** The derived requests and limits for `workers` processes of `maxConnections` each. */
export function deriveResources(workers: number, maxConnections: number): Resources {
  const m = RESOURCE_MODEL;
  const baseMiB = m.primaryMiB + workers * m.workerBaseMiB;
  const connectionsMiB = Math.ceil((workers * maxConnections * m.perConnectionKiB) / 1024);
  return {
    requests: { cpu: `${workers * m.cpuMillisPerWorker}m`, memory: `${baseMiB}Mi` },
    limits: { memory: `${baseMiB + connectionsMiB}Mi` },
  };
}

const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** Bytes of a memory quantity such as 512Mi, 1G or 1073741824; undefined if unreadable. */
export function memoryBytes(q: IntOrString | undefined): number | undefined {
  if (q === undefined) return undefined;
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q).trim());
  if (!m) return undefined;
  return Number(m[1]) * (UNITS[m[2] ?? ''] ?? 1);
}

/**
 * The container's resources: derived values, each overridden by the spec's own. A memory limit
 * given below the derived request pulls the request down to it (the API server refuses a request
 * above its limit).
 */
export function containerResources(
  workers: number,
  maxConnections: number,
  overrides: { requests?: ResourceMap; limits?: ResourceMap } | undefined,
): Resources {
  const derived = deriveResources(workers, maxConnections);
  const requests = { ...derived.requests, ...overrides?.requests };
  const limits = { ...derived.limits, ...overrides?.limits };
  const limit = memoryBytes(limits.memory);
  const request = memoryBytes(requests.memory);
  if (
    overrides?.requests?.memory === undefined &&
    limit !== undefined &&
    request !== undefined &&
    request > limit
  ) {
    requests.memory = limits.memory as IntOrString;
  }
  if (
    overrides?.limits?.memory === undefined &&
    limit !== undefined &&
    request !== undefined &&
    request > limit
  ) {
    limits.memory = requests.memory as IntOrString;
  }
  return { requests, limits };
}
