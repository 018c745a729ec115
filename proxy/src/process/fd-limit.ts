// Descriptors against MAX_CONNECTIONS (issue 13, item 5). Each client connection can hold two
// descriptors (the client and its upstream, or its masked relay), so a worker allowed 60 000
// connections under the common soft limit of 1024 descriptors runs out long before its own limit,
// and every accept, dial and file read then fails with EMFILE. At start we read the soft limit and
// lower the per-worker connection limit to what fits, and say so.
import { readFileSync } from 'node:fs';

/** Descriptors kept for everything that is not a client: listeners, IPC, logs, DNS, middle-ends. */
const RESERVED_DESCRIPTORS = 64;
const DESCRIPTORS_PER_CONNECTION = 2;

/** The soft RLIMIT_NOFILE of this process from /proc/self/limits; undefined if unknown/unlimited. */
export function softDescriptorLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (m === null || m[1] === 'unlimited') return undefined;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : undefined;
}

export interface ConnectionBudget {
  readonly maxConnections: number;
  /** Set when MAX_CONNECTIONS was lowered: the message to log. */
  readonly lowered?: string;
}

/** The per-worker connection limit that fits in `softLimit` descriptors. */
export function fitConnections(maxConnections: number, softLimit: number | undefined): ConnectionBudget {
  if (softLimit === undefined) return { maxConnections };
  const fits = Math.max(1, Math.floor((softLimit - RESERVED_DESCRIPTORS) / DESCRIPTORS_PER_CONNECTION));
  if (fits >= maxConnections) return { maxConnections };
  return {
    maxConnections: fits,
    lowered:
      `MAX_CONNECTIONS=${maxConnections} needs about ${maxConnections * DESCRIPTORS_PER_CONNECTION + RESERVED_DESCRIPTORS} ` +
      `file descriptors per worker but the soft limit (ulimit -n) is ${softLimit}; each worker accepts at most ` +
      `${fits} connections. Raise the limit (e.g. ulimit -n 1048576, or LimitNOFILE= in systemd) to serve more`,
  };
}
