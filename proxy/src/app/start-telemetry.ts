// The primary's telemetry endpoints: the official /stats page and Prometheus /metrics with the
// probes, both fed from the counters every worker reports and from the primary's own state.
import type { Config } from '../config/config.js';
import type { SiteProfiles } from '../fake-tls/profile-service.js';
import type { Logger } from '../log/logger.js';
import type { MiddleConfig } from '../middle/config-service.js';
import type { PrimaryHandle } from '../process/primary.js';
import type { ReplayService } from '../replay/replay-cache.js';
import type { StateStore } from '../state/state-store.js';
import {
  allowList,
  memoryFigures,
  startMetricsEndpoint,
  startStatsEndpoint,
} from '../telemetry/http-endpoints.js';
import { createMetricsRegistry } from '../telemetry/metrics.js';
import {
  type ClockFigures,
  formatOfficialStats,
  type TlsProfileRow,
  type UserStatsRow,
} from '../telemetry/official-stats.js';
import type { WorkerTotals } from '../telemetry/worker-totals.js';
import type { UsersService } from '../users/users-service.js';
import { VERSION_STRING } from '../version.js';

/** What the endpoints show: the primary's parts. */
export interface TelemetrySources {
  readonly users: UsersService;
  readonly middle: MiddleConfig | undefined;
  readonly primary: Pick<PrimaryHandle<unknown>, 'listeningWorkers' | 'workerRestarts'>;
  readonly totals: WorkerTotals;
  readonly replay: ReplayService;
  readonly store: StateStore | undefined;
  readonly profiles: SiteProfiles | undefined;
}

export async function startTelemetry(config: Config, sources: TelemetrySources, log: Logger): Promise<void> {
  const { users, middle, primary, totals, replay, store, profiles } = sources;
  const tlsProfiles = (): TlsProfileRow[] =>
    (profiles?.list() ?? []).map((p) => {
      const shape = p.shapes.modern ?? p.shapes.classic;
      return {
        domain: p.domain,
        source: p.source,
        ageSeconds: p.measuredAt === undefined ? -1 : Math.floor((Date.now() - p.measuredAt) / 1000),
        flightBytes: shape === undefined ? 'fallback' : `${shape.flightBytes.min}-${shape.flightBytes.max}`,
        siteLayout:
          shape === undefined
            ? '-'
            : `records=${shape.records.min === shape.records.max ? shape.records.min : `${shape.records.min}-${shape.records.max}`} ccs=${shape.ccs}`,
      };
    });
  const startTime = Math.floor(Date.now() / 1000);
  const mode = middle ? ('middle' as const) : ('direct' as const);
  let httpQueries = 0;
  if (config.statsPort !== 0) {
    await startStatsEndpoint({
      port: config.statsPort,
      bind: config.statsBind,
      allow: allowList(config.statsAllow),
      onQuery: () => {
        httpQueries++;
      },
      render: async () => {
        const began = performance.now();
        const memory = await memoryFigures();
        return formatOfficialStats({
          pid: process.pid,
          startTime,
          now: Math.floor(Date.now() / 1000),
          workers: config.workers,
          maxConnectionsPerWorker: config.maxConnections,
          totals: totals.totals(),
          memory,
          mode,
          tagSet: config.tag !== undefined,
          version: VERSION_STRING,
          proxyConfig: middle?.statsInfo(),
          proxySecretMd5: middle?.snapshot.secretInfo.md5,
          users: config.userMetrics ? userFigures(users, totals) : undefined,
          targets: middle && { declared: middle.declaredTargets(), ready: totals.readyTargets() },
          clock: middle && clockFigures(middle),
          httpQueries,
          tlsProfiles: tlsProfiles(),
          generateSeconds: (performance.now() - began) / 1000,
        });
      },
    }).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`STATS_PORT: cannot listen on port ${config.statsPort}: ${err.message}`);
    });
  }
  if (config.metricsPort !== 0) {
    const registry = createMetricsRegistry(() => ({
      totals: totals.totals(),
      workers: primary.listeningWorkers(),
      workerRestarts: primary.workerRestarts(),
      perUserMetrics: config.userMetrics,
      mode,
      version: VERSION_STRING,
      configRefreshes: middle?.refreshes ?? {},
      configAgeSeconds: middle?.ageSeconds(),
      clock: middle && clockFigures(middle),
      targets: middle && { declared: middle.declaredTargets(), ready: totals.readyTargets() },
      masked: totals.totals().masked,
      replay: replay.figures(),
      store: store?.figures(),
      tlsProfiles: tlsProfiles(),
      tlsProfileMeasurements: profiles && {
        ok: profiles.measurements - profiles.failures,
        failed: profiles.failures,
      },
    }));
    await startMetricsEndpoint({
      port: config.metricsPort,
      bind: config.metricsBind,
      allow: allowList(config.metricsAllow),
      registry,
      notReadyReason: () => {
        if (primary.listeningWorkers() < config.workers) {
          return `${primary.listeningWorkers()} of ${config.workers} workers listening`;
        }
        if (middle && totals.readyTargets() === 0) return 'no middle proxy connected';
        return undefined;
      },
    }).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`METRICS_PORT: cannot listen on port ${config.metricsPort}: ${err.message}`);
    });
  }
  log.info('telemetry listening', { statsPort: config.statsPort, metricsPort: config.metricsPort });
}

function clockFigures(middle: MiddleConfig): ClockFigures {
  const clock = middle.clock();
  if (clock === 'off' || clock === undefined) {
    return { state: clock ?? 'unknown', skewSeconds: undefined, checkedAt: undefined };
  }
  return { state: clock.state, skewSeconds: clock.skewSeconds, checkedAt: clock.checkedAt };
}

function userFigures(users: UsersService, totals: WorkerTotals): UserStatsRow[] {
  const perUser = totals.totals().perUser;
  return users.users().map((u) => {
    const row = perUser[u.name];
    return {
      name: u.name,
      connections: row?.connections ?? 0,
      current: row?.current ?? 0,
      fromClient: row?.fromClient ?? 0,
      toClient: row?.toClient ?? 0,
      uniqueIps: users.figures(u.name)?.uniqueIps ?? 0,
      quotaUsed: users.figures(u.name)?.bytesUsed ?? 0,
      refused: Object.values(row?.refused ?? {}).reduce((a, b) => a + (b ?? 0), 0),
    };
  });
}
