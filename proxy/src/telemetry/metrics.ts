// Prometheus metrics, computed at scrape time from the same aggregated counters as /stats.
// Conventions: `mtproxy_` prefix, `_total` counters, base units; labels never carry client
// addresses or secrets (a secret is named secret1, secret2, ...).
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { CounterSnapshot, UserCounters } from './counters.js';
import type { ClockFigures } from './official-stats.js';

export interface MetricsModel {
  readonly totals: CounterSnapshot;
  readonly workers: number;
  readonly workerRestarts: number;
  /** Per-user series on (USER_METRICS). */
  readonly perUserMetrics: boolean;
  readonly mode: 'direct' | 'middle';
  readonly version: string;
  /** Middle mode: config refreshes by result and the age of the config in force. */
  readonly configRefreshes: Readonly<Record<string, number>>;
  readonly configAgeSeconds: number | undefined;
  /** Middle mode: the clock check (undefined in direct mode). */
  readonly clock?: ClockFigures | undefined;
  readonly masked: number;
  /** Fake-TLS site profiles: domain, source, age (-1: never measured). */
  readonly tlsProfiles?: readonly {
    readonly domain: string;
    readonly source: string;
    readonly ageSeconds: number;
  }[];
  /** Site measurements by result. */
  readonly tlsProfileMeasurements?: { readonly ok: number; readonly failed: number };
  /** Middle mode: distinct targets declared in the config and ready in any worker. */
  readonly targets: { readonly declared: number; readonly ready: number } | undefined;
  /** The primary's replay cache (replay/replay-cache.ts). */
  readonly replay?: {
    readonly entries: number;
    readonly capacity: number;
    readonly oldestAgeSeconds: number;
    readonly bytes: number;
    readonly unsaved: number;
  };
  /** The shared state store (STATE_URL), when one is set. */
  readonly store?: {
    readonly up: boolean;
    readonly errors: number;
    readonly commands: number;
    readonly latencySeconds: number;
    readonly fallbacks: Readonly<Record<string, number>>;
  };
}

type Labels = Record<string, string>;

type MetricArgs = [
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  values: () => readonly [Labels, number][],
];

/**
 * A metric whose values are read from the aggregated counters at scrape time: a counter is set
 * from its absolute total (never incremented here), a gauge from its current value.
 */
function scraped(kind: 'counter' | 'gauge', ...[registry, name, help, labelNames, values]: MetricArgs): void {
  const common = { name, help, labelNames, registers: [registry] };
  if (kind === 'counter') {
    new Counter({
      ...common,
      collect() {
        this.reset();
        for (const [labels, v] of values()) this.inc(labels, v);
      },
    });
  } else {
    new Gauge({
      ...common,
      collect() {
        this.reset();
        for (const [labels, v] of values()) this.set(labels, v);
      },
    });
  }
}

const totalCounter = (...args: MetricArgs): void => scraped('counter', ...args);
const gauge = (...args: MetricArgs): void => scraped('gauge', ...args);

/** One scrape reads every metric within a few milliseconds; they all share one model. */
const MODEL_REUSE_MS = 250;

export function createMetricsRegistry(model: () => MetricsModel): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client also reports each of its active handles/requests/resources gauges as a sum named
  // like a counter (_total), which promtool rightly flags; the per-type gauges carry the same.
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    registry.removeSingleMetric(name);
  }
  // Summing every worker's snapshot once per scrape, not once per metric, also keeps the
  // figures of one scrape consistent with each other.
  let cached: MetricsModel | undefined;
  let cachedAt = 0;
  const m = (): MetricsModel => {
    const now = Date.now();
    if (cached === undefined || now - cachedAt > MODEL_REUSE_MS) {
      cached = model();
      cachedAt = now;
    }
    return cached;
  };
  const t = (): CounterSnapshot => m().totals;

  gauge(
    registry,
    'mtproxy_build_info',
    'Version and mode of this proxy; always 1.',
    ['version', 'mode'],
    () => [[{ version: m().version, mode: m().mode }, 1]],
  );
  gauge(registry, 'mtproxy_workers', 'Worker processes serving clients.', [], () => [[{}, m().workers]]);
  totalCounter(registry, 'mtproxy_worker_restarts_total', 'Workers that died and were restarted.', [], () => [
    [{}, m().workerRestarts],
  ]);
  gauge(registry, 'mtproxy_connections', 'Client connections open now.', [], () => [
    [{}, t().connectionsCurrent],
  ]);
  totalCounter(registry, 'mtproxy_connections_opened_total', 'Client connections accepted.', [], () => [
    [{}, t().connectionsOpened],
  ]);
  totalCounter(
    registry,
    'mtproxy_connections_closed_total',
    'Client connections closed, by reason.',
    ['reason'],
    () => Object.entries(t().closed).map(([reason, v]) => [{ reason }, v ?? 0]),
  );
  totalCounter(
    registry,
    'mtproxy_connections_refused_total',
    'Client connections refused before any handshake, by reason (max_connections, per_ip_limit, bad_proxy_header).',
    ['reason'],
    () => [
      [{ reason: 'max_connections' }, t().refused.max_connections ?? t().acceptRefusedLimit],
      ...Object.entries(t().refused)
        .filter(([reason]) => reason !== 'max_connections')
        .map(([reason, v]): [Labels, number] => [{ reason }, v ?? 0]),
    ],
  );
  totalCounter(
    registry,
    'mtproxy_fake_tls_handshakes_total',
    'Authenticated handshakes made inside fake TLS (ee); also counted in mtproxy_handshakes_total.',
    [],
    () => [[{}, t().tlsHandshakesOk]],
  );
  totalCounter(
    registry,
    'mtproxy_handshakes_total',
    'Client handshakes by transport and result (ok, or the reason they failed).',
    ['transport', 'result'],
    () => [
      ...Object.entries(t().handshakesOk).map(([transport, v]): [Labels, number] => [
        { transport, result: 'ok' },
        v,
      ]),
      ...Object.entries(t().handshakesFailed).map(([result, v]): [Labels, number] => [
        { transport: 'unknown', result },
        v ?? 0,
      ]),
    ],
  );
  totalCounter(
    registry,
    'mtproxy_replays_blocked_total',
    'Handshakes refused as replays of an earlier one.',
    [],
    () => [[{}, t().handshakesFailed.replay ?? 0]],
  );
  const replayGauges: [string, string, 'entries' | 'capacity' | 'oldestAgeSeconds' | 'bytes'][] = [
    ['mtproxy_replay_cache_entries', 'Authenticated handshakes remembered by the replay cache.', 'entries'],
    [
      'mtproxy_replay_cache_capacity',
      'Handshakes the replay cache can remember (REPLAY_CACHE_SIZE); when full, new ones are refused.',
      'capacity',
    ],
    [
      'mtproxy_replay_cache_oldest_age_seconds',
      'Age of the oldest remembered handshake; below REPLAY_WINDOW only if the proxy is younger or idle.',
      'oldestAgeSeconds',
    ],
    ['mtproxy_replay_cache_bytes', 'Memory held by the replay cache tables.', 'bytes'],
  ];
  for (const [name, help, field] of replayGauges) {
    gauge(registry, name, help, [], () => {
      const r = m().replay;
      return r === undefined ? [] : [[{}, r[field]]];
    });
  }
  const store = () => m().store;
  gauge(
    registry,
    'mtproxy_state_store_up',
    '1 when the shared state store (STATE_URL) answers, else 0.',
    [],
    () => {
      const s = store();
      return s === undefined ? [] : [[{}, s.up ? 1 : 0]];
    },
  );
  totalCounter(
    registry,
    'mtproxy_state_store_errors_total',
    'Store commands that failed or timed out.',
    [],
    () => (store() === undefined ? [] : [[{}, store()!.errors]]),
  );
  totalCounter(registry, 'mtproxy_state_store_commands_total', 'Store commands answered.', [], () =>
    store() === undefined ? [] : [[{}, store()!.commands]],
  );
  totalCounter(
    registry,
    'mtproxy_state_store_latency_seconds_total',
    'Round-trip time of answered store commands, summed (divide by _commands_total for the mean).',
    [],
    () => (store() === undefined ? [] : [[{}, store()!.latencySeconds]]),
  );
  totalCounter(
    registry,
    'mtproxy_state_fallbacks_total',
    'Decisions made by a fallback because the store did not answer, by protection (replay, limits, quota).',
    ['protection'],
    () =>
      Object.entries(store()?.fallbacks ?? {}).map(([protection, v]): [Labels, number] => [
        { protection },
        v,
      ]),
  );
  totalCounter(
    registry,
    'mtproxy_replay_cache_unsaved_total',
    'Replay cache entries that could not be written to DATA_DIR (kept in memory only).',
    [],
    () => [[{}, m().replay?.unsaved ?? 0]],
  );
  totalCounter(
    registry,
    'mtproxy_masked_connections_total',
    'Connections that failed the handshake and were handed to the mask host.',
    [],
    () => [[{}, m().masked]],
  );
  totalCounter(
    registry,
    'mtproxy_mask_failures_total',
    'Failed connections that could not be masked and were held and closed instead, by reason (self: the mask target is this proxy; unreachable; busy: MASK_MAX_RELAYS relays already open).',
    ['reason'],
    () => Object.entries(t().maskFailures).map(([reason, v]) => [{ reason }, v ?? 0]),
  );
  totalCounter(
    registry,
    'mtproxy_middle_clients_flooded_total',
    'Middle mode: clients closed for letting answers pile up unread (MIDDLE_CLIENT_BACKLOG, or the largest past MIDDLE_BACKLOG_BUDGET).',
    [],
    () => [[{}, t().middle.connectionsFailedFlood]],
  );
  totalCounter(
    registry,
    'mtproxy_worker_uncaught_errors_total',
    "Exceptions that reached a worker's last resort; the worker logged them and kept serving.",
    [],
    () => [[{}, t().uncaughtErrors]],
  );
  totalCounter(
    registry,
    'mtproxy_relayed_bytes_total',
    'Bytes relayed between clients and Telegram, by direction.',
    ['direction'],
    () => [
      [{ direction: 'from_client' }, t().bytesFromClient],
      [{ direction: 'to_client' }, t().bytesToClient],
    ],
  );
  gauge(registry, 'mtproxy_upstream_connections', 'Connections to Telegram open now.', [], () => [
    [{}, t().upstreamCurrent + t().middle.readyConnections],
  ]);
  totalCounter(
    registry,
    'mtproxy_upstream_connects_total',
    'Connections opened to Telegram, by DC.',
    ['dc'],
    () => Object.entries(t().upstreamConnects).map(([dc, v]) => [{ dc }, v]),
  );
  totalCounter(
    registry,
    'mtproxy_upstream_connect_failures_total',
    'Failed attempts to connect to Telegram, by DC.',
    ['dc'],
    () => Object.entries(t().upstreamFailures).map(([dc, v]) => [{ dc }, v]),
  );
  gauge(
    registry,
    'mtproxy_upstream_targets',
    'Middle proxies in the current config (declared) and those with a ready connection (ready).',
    ['state'],
    () => {
      const targets = m().targets;
      return targets === undefined
        ? []
        : [
            [{ state: 'declared' }, targets.declared],
            [{ state: 'ready' }, targets.ready],
          ];
    },
  );
  totalCounter(
    registry,
    'mtproxy_middle_proxy_packets_total',
    'Packets exchanged with middle proxies, by kind and result.',
    ['kind', 'result'],
    () => {
      const mid = t().middle;
      return [
        [{ kind: 'query', result: 'forwarded' }, mid.forwardedQueries],
        [{ kind: 'query', result: 'dropped' }, mid.droppedQueries],
        [{ kind: 'response', result: 'forwarded' }, mid.forwardedResponses],
        [{ kind: 'response', result: 'dropped' }, mid.droppedResponses],
        [{ kind: 'simple_ack', result: 'forwarded' }, mid.forwardedSimpleAcks],
        [{ kind: 'simple_ack', result: 'dropped' }, mid.droppedSimpleAcks],
      ];
    },
  );
  totalCounter(
    registry,
    'mtproxy_config_refreshes_total',
    "Loads of Telegram's proxy secret and config (at start and each refresh), by file and result.",
    ['file', 'result'],
    () =>
      Object.entries(m().configRefreshes).map(([key, v]) => {
        const [file, result] = key.split('/') as [string, string];
        return [{ file, result }, v];
      }),
  );
  gauge(registry, 'mtproxy_config_age_seconds', 'Age of the Telegram proxy config in force.', [], () => {
    const age = m().configAgeSeconds;
    return age === undefined ? [] : [[{}, age]];
  });
  gauge(
    registry,
    'mtproxy_fake_tls_profile_age_seconds',
    'Age of the site profile our fake-TLS answers follow, by domain and source (measured, cache, fallback; -1: never measured).',
    ['domain', 'source'],
    () => (m().tlsProfiles ?? []).map((p) => [{ domain: p.domain, source: p.source }, p.ageSeconds]),
  );
  totalCounter(
    registry,
    'mtproxy_fake_tls_profile_measurements_total',
    'Measurements of the fake-TLS sites, by result.',
    ['result'],
    () => {
      const n = m().tlsProfileMeasurements;
      return n === undefined
        ? []
        : [
            [{ result: 'ok' }, n.ok],
            [{ result: 'failed' }, n.failed],
          ];
    },
  );
  gauge(
    registry,
    'mtproxy_clock_check',
    "Middle mode: 1 for the state of the last check of our clock against Telegram's Date header (ok, skewed: more than 30 s off, unknown, off).",
    ['state'],
    () => {
      const clock = m().clock;
      return clock === undefined ? [] : [[{ state: clock.state }, 1]];
    },
  );
  gauge(
    registry,
    'mtproxy_clock_skew_seconds',
    "Middle mode: our clock minus Telegram's at the last config fetch (positive: ours is ahead); 0 while mtproxy_clock_check is unknown or off.",
    [],
    () => {
      const skew = m().clock?.skewSeconds;
      return skew === undefined ? [] : [[{}, skew]];
    },
  );
  // Per-user series carry the user's name (secret1, ... or a users-file name), never a secret;
  // USER_METRICS=off leaves them out for operators who must not record who uses the proxy.
  const users = (): [string, UserCounters][] => (m().perUserMetrics ? Object.entries(t().perUser) : []);
  totalCounter(
    registry,
    'mtproxy_user_connections_total',
    'Authenticated client connections, by user.',
    ['user'],
    () => users().map(([user, row]) => [{ user }, row.connections]),
  );
  gauge(registry, 'mtproxy_user_connections', 'Client connections open now, by user.', ['user'], () =>
    users().map(([user, row]) => [{ user }, row.current]),
  );
  totalCounter(
    registry,
    'mtproxy_user_relayed_bytes_total',
    'Bytes relayed, by user and direction.',
    ['user', 'direction'],
    () =>
      users().flatMap(([user, row]): [Labels, number][] => [
        [{ user, direction: 'from_client' }, row.fromClient],
        [{ user, direction: 'to_client' }, row.toClient],
      ]),
  );
  totalCounter(
    registry,
    'mtproxy_user_refused_total',
    "Authenticated connections turned away by their user's limits, by user and reason.",
    ['user', 'reason'],
    () =>
      users().flatMap(([user, row]) =>
        Object.entries(row.refused).map(([reason, v]): [Labels, number] => [{ user, reason }, v ?? 0]),
      ),
  );
  gauge(
    registry,
    'mtproxy_workers_resident_memory_bytes',
    'Resident memory of all worker processes.',
    [],
    () => [[{}, t().rssBytes]],
  );
  totalCounter(
    registry,
    'mtproxy_workers_cpu_seconds_total',
    'CPU time used by all worker processes.',
    [],
    () => [[{}, t().cpuSeconds]],
  );
  return registry;
}
