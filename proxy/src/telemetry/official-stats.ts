// The official proxy's /stats text (docs/protocol.md §7):
// the same keys in the same order, the same section markers and multi-value lines, so existing
// exporters and scripts keep working. Keys that mean nothing for a Node.js process keep their
// place with an honest 0. Pure: a model in, text out.
import type { ProxyConfigInfo } from '../middle/config-service.js';
import type { CounterSnapshot } from './counters.js';

export interface MemoryFigures {
  readonly vmsize: number;
  readonly vmrss: number;
  readonly vmdata: number;
  readonly memfree: number;
  readonly memcached: number;
  readonly swapUsed: number;
  readonly swapTotal: number;
}

/** One user's line in the `users` section (our addition, in the official section style). */
export interface UserStatsRow {
  readonly name: string;
  readonly connections: number;
  readonly current: number;
  readonly fromClient: number;
  readonly toClient: number;
  readonly uniqueIps: number;
  readonly quotaUsed: number;
  readonly refused: number;
}

export interface StatsModel {
  readonly pid: number;
  /** Unix seconds. */
  readonly startTime: number;
  readonly now: number;
  readonly workers: number;
  readonly maxConnectionsPerWorker: number;
  readonly totals: CounterSnapshot;
  readonly memory: MemoryFigures;
  readonly mode: 'direct' | 'middle';
  readonly tagSet: boolean;
  readonly version: string;
  readonly proxyConfig: ProxyConfigInfo | undefined;
  readonly proxySecretMd5: string | undefined;
  readonly httpQueries: number;
  readonly generateSeconds: number;
  /**
   * Middle mode: distinct targets in the config and distinct targets ready in any worker, for
   * `active_targets`/`ready_targets`; the `total_*` keys stay sums over workers, as officially.
   */
  readonly targets?: { readonly declared: number; readonly ready: number } | undefined;
  /** Per-user figures, or undefined to leave the section out (USER_METRICS=off). */
  readonly users?: readonly UserStatsRow[] | undefined;
  /** Fake-TLS site profiles, one per domain (fake-tls/profile-service.ts); none without fake TLS. */
  readonly tlsProfiles?: readonly TlsProfileRow[] | undefined;
  /** Middle mode: the clock check against Telegram's Date header (our addition). */
  readonly clock?: ClockFigures | undefined;
}

/** One domain's site profile in the `fake_tls_profiles` section (our addition). */
export interface TlsProfileRow {
  readonly domain: string;
  /** measured, cache or fallback. */
  readonly source: string;
  /** Seconds since the shape was measured; -1 for the fallback. */
  readonly ageSeconds: number;
  /** Our answer's wire range for the first flight, `min-max` bytes, or `fallback`. */
  readonly flightBytes: string;
  /**
   * What the site does that the apps forbid us to copy: its encrypted records per flight and where
   * its ChangeCipherSpec came (`records=4 ccs=with-hello`); `-` for the fallback.
   */
  readonly siteLayout: string;
}

/** `off` (CLOCK_CHECK=off), `unknown` before an HTTP answer with a Date header, else its result. */
export interface ClockFigures {
  readonly state: 'ok' | 'skewed' | 'unknown' | 'off';
  readonly skewSeconds: number | undefined;
  readonly checkedAt: number | undefined;
}

type Line = readonly [string, string | number];

const zeros = (n: number): string => Array.from({ length: n }, () => '0').join(' ');

function section(name: string, lines: readonly Line[]): Line[] {
  return [[`>>>>>>${name}>>>>>>`, 'start'], ...lines, [`<<<<<<${name}<<<<<<`, 'end']];
}

export function formatOfficialStats(m: StatsModel): string {
  const t = m.totals;
  const uptime = Math.max(0, m.now - m.startTime);
  const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
  const outboundCreated = sum(t.upstreamConnects);
  const connectFailures = sum(t.upstreamFailures);
  const maxSpecial = m.maxConnectionsPerWorker * m.workers;
  const active = t.connectionsCurrent + t.upstreamCurrent + t.middle.readyConnections;
  const relayedBytes = t.bytesFromClient + t.bytesToClient;

  const lines: Line[] = [
    ['pid', m.pid],
    ['start_time', m.startTime],
    ['current_time', m.now],
    ['uptime', uptime],
    ['tot_idle_time', '0.000'],
    ['average_idle_percent', '0.000'],
    ['recent_idle_percent', '0.000'],
    ['active_network_events', 0],
    ['time_after_epoll', '0.000'],
    ['epoll_calls', 0],
    ['epoll_intr', 0],
    ['PID', `[0.0.0.0:0:${m.pid}:${m.startTime}]`],
    ...section('connections', [
      ['active_connections', active],
      ['active_dh_connections', 0],
      ['outbound_connections', t.upstreamCurrent + t.middle.readyConnections],
      ['ready_outbound_connections', t.upstreamCurrent + t.middle.readyConnections],
      ['active_outbound_connections', t.upstreamCurrent + t.middle.readyConnections],
      ['outbound_connections_created', outboundCreated],
      ['total_connect_failures', connectFailures],
      ['inbound_connections', t.connectionsCurrent],
      ['active_inbound_connections', t.connectionsCurrent],
      ['inbound_connections_accepted', t.connectionsOpened],
      ['listening_connections', m.workers],
      ['unused_connections_closed', t.closed.idle ?? 0],
      ['ready_targets', m.targets?.ready ?? t.middle.readyTargets],
      ['allocated_targets', m.targets?.declared ?? t.middle.declaredTargets],
      ['active_targets', m.targets?.declared ?? t.middle.declaredTargets],
      ['inactive_targets', 0],
      ['free_targets', 0],
      ['max_connections', maxSpecial],
      ['active_special_connections', t.connectionsCurrent],
      ['max_special_connections', maxSpecial],
      ['max_accept_rate', 0],
      ['cur_accept_rate_remaining', 0],
      ['max_connection', 0],
      ['conn_generation', t.connectionsOpened + outboundCreated],
      ['allocated_connections', active],
      ['allocated_outbound_connections', t.upstreamCurrent + t.middle.readyConnections],
      ['allocated_inbound_connections', t.connectionsCurrent],
      ['allocated_socket_connections', active],
      ['tcp_readv_calls', 0],
      ['tcp_readv_intr', 0],
      ['tcp_readv_bytes', relayedBytes],
      ['tcp_writev_calls', 0],
      ['tcp_writev_intr', 0],
      ['tcp_writev_bytes', relayedBytes],
      ['free_later_size', 0],
      ['free_later_total', 0],
      ['accept_calls_failed', 0],
      ['accept_nonblock_set_failed', 0],
      ['accept_connection_limit_failed', t.acceptRefusedLimit],
      ['accept_rate_limit_failed', 0],
      ['accept_init_accepted_failed', 0],
    ]),
    ...section('raw_msg', [
      ['rwm_total_msgs', 0],
      ['rwm_total_msg_parts', 0],
    ]),
    ...section('raw_msg_buffer', [
      ['total_used_buffers_size', 0],
      ['total_used_buffers', 0],
      ['allocated_buffer_bytes', 0],
      ['buffer_chunk_alloc_ops', 0],
      ['allocated_buffer_chunks', 0],
      ['max_allocated_buffer_chunks', 0],
      ['max_buffer_chunks', 0],
      ['max_allocated_buffer_bytes', 0],
    ]),
    ...section('tl_parse', [
      ['rpc_queries_received', 0],
      ['rpc_answers_error', 0],
      ['rpc_answers_received', 0],
      ['rpc_sent_errors', 0],
      ['rpc_sent_answers', 0],
      ['rpc_sent_queries', 0],
      ['tl_in_allocated', 0],
      ['tl_out_allocated', 0],
      ['rpc_qps', '0.000000'],
      ['default_rpc_flags', 0],
    ]),
    ...section('crypto_aes', [
      ['allocated_aes_crypto', t.connectionsCurrent + t.middle.readyConnections],
      ['allocated_aes_crypto_temp', 0],
      ['aes_pwd_hash', m.proxySecretMd5 ?? ''],
    ]),
    ...section('crypto_dh', [['tot_dh_rounds', zeros(3)]]),
    ...section('jobs', [
      ...[
        'thread_average_idle_percent',
        'thread_recent_idle_percent',
        'tot_threads',
        'thread_load_average_user',
        'thread_load_average_sys',
        'thread_load_average',
        'thread_load_recent_user',
        'thread_load_recent_sys',
        'thread_load_recent',
      ].map((k): Line => [k, zeros(16)]),
      ...[
        'load_average_user',
        'load_average_sys',
        'load_average_total',
        'load_recent_user',
        'load_recent_sys',
        'load_recent_total',
        'max_average_user',
        'max_average_sys',
        'max_average_total',
        'max_recent_user',
        'max_recent_sys',
        'max_recent_total',
      ].map((k): Line => [k, '0.000000']),
      ['job_timers_allocated', 0],
      ['jobs_created', 0],
      ['jobs_active', 0],
      ['jobs_running', zeros(16)],
      ['jobs_allocated_memory', 0],
      ['timer_ops', 0],
      ['timer_ops_scheduler', 0],
    ]),
    ...section('mp_queue', [
      ['mpq_blocks_allocated', 0],
      ['mpq_blocks_allocated_max', 0],
      ['mpq_blocks_allocations', 0],
      ['mpq_blocks_true_allocations', 0],
      ['mpq_blocks_wasted', 0],
      ['mpq_blocks_prepared', 0],
      ['mpq_small_blocks_allocated', 0],
      ['mpq_small_blocks_allocated_max', 0],
      ['mpq_active', 0],
      ['mpq_allocated', 0],
    ]),
    ...section('timers', [
      ['event_timer_insert_ops', 0],
      ['event_timer_remove_ops', 0],
      ['event_timer_alarms', 0],
      ['total_timers', 0],
    ]),
    ...section('rpc_targets', [
      ['total_rpc_targets', t.middle.declaredTargets],
      ['total_connections_in_rpc_targets', t.middle.readyConnections],
    ]),
    ...(m.users === undefined
      ? []
      : section(
          'users',
          m.users.flatMap((u): Line[] => [
            [`user_connections:${u.name}`, u.current],
            [`user_connections_total:${u.name}`, u.connections],
            [`user_octets_from_client:${u.name}`, u.fromClient],
            [`user_octets_to_client:${u.name}`, u.toClient],
            [`user_unique_ips:${u.name}`, u.uniqueIps],
            [`user_quota_used_bytes:${u.name}`, u.quotaUsed],
            [`user_refused_total:${u.name}`, u.refused],
          ]),
        )),
    ...(m.tlsProfiles === undefined || m.tlsProfiles.length === 0
      ? []
      : section(
          'fake_tls_profiles',
          m.tlsProfiles.flatMap((p): Line[] => [
            [`tls_profile_source:${p.domain}`, p.source],
            [`tls_profile_age_seconds:${p.domain}`, p.ageSeconds],
            [`tls_profile_flight_bytes:${p.domain}`, p.flightBytes],
            [`tls_profile_site_layout:${p.domain}`, p.siteLayout],
          ]),
        )),
    ['stats_generate_time', m.generateSeconds.toFixed(6)],
    ['vmsize_bytes', m.memory.vmsize],
    ['vmrss_bytes', m.memory.vmrss],
    ['vmdata_bytes', m.memory.vmdata],
    ['memfree_bytes', m.memory.memfree],
    ['memcached_bytes', m.memory.memcached],
    ['swap_used_bytes', m.memory.swapUsed],
    ['swap_total_bytes', m.memory.swapTotal],
    ['config_filename', m.proxyConfig?.source ?? ''],
    ['config_loaded_at', m.proxyConfig?.loadedAt ?? 0],
    ['config_size', m.proxyConfig?.size ?? 0],
    ['config_md5', m.proxyConfig?.md5 ?? ''],
    ['config_auth_clusters', m.proxyConfig?.clusters ?? 0],
    ...(m.clock === undefined
      ? []
      : ([
          ['clock_check', m.clock.state],
          ['clock_skew_seconds', m.clock.skewSeconds === undefined ? '' : m.clock.skewSeconds.toFixed(3)],
          ['clock_checked_at', m.clock.checkedAt ?? 0],
        ] as const)),
    ['workers', m.workers],
    ['queries_get', 0],
    ['qps_get', '0.000000'],
    ['tot_forwarded_queries', t.middle.forwardedQueries],
    ['expired_forwarded_queries', 0],
    ['dropped_queries', t.middle.droppedQueries],
    ['tot_forwarded_responses', t.middle.forwardedResponses],
    ['dropped_responses', t.middle.droppedResponses],
    ['tot_forwarded_simple_acks', t.middle.forwardedSimpleAcks],
    ['dropped_simple_acks', t.middle.droppedSimpleAcks],
    ['active_rpcs_created', 0],
    ['active_rpcs', 0],
    ['rpc_dropped_answers', 0],
    ['rpc_dropped_running', 0],
    ['window_clamp', 0],
    ['total_ready_targets', t.middle.readyTargets],
    ['total_allocated_targets', t.middle.declaredTargets],
    ['total_declared_targets', t.middle.declaredTargets],
    ['total_inactive_targets', 0],
    ['total_connections', active],
    ['total_encrypted_connections', active],
    ['total_allocated_connections', active],
    ['total_allocated_outbound_connections', t.upstreamCurrent + t.middle.readyConnections],
    ['total_allocated_inbound_connections', t.connectionsCurrent],
    ['total_allocated_socket_connections', active],
    ['total_dh_connections', 0],
    ['total_dh_rounds', zeros(3)],
    ['total_special_connections', t.connectionsCurrent],
    ['total_max_special_connections', maxSpecial],
    ['total_accept_connections_failed', `0 0 ${t.acceptRefusedLimit} 0 0`],
    ['ext_connections', t.middle.extConnections],
    ['ext_connections_created', t.middle.extConnectionsCreated],
    ['total_active_network_events', 0],
    ['total_network_buffers_used_size', 0],
    ['total_network_buffers_allocated_bytes', 0],
    ['total_network_buffers_used', 0],
    ['total_network_buffer_chunks_allocated', 0],
    ['total_network_buffer_chunks_allocated_max', 0],
    ['mtproto_proxy_errors', 0],
    ['connections_failed_lru', 0],
    ['connections_failed_flood', t.middle.connectionsFailedFlood],
    ['http_connections', 0],
    ['pending_http_queries', 0],
    ['http_queries', m.httpQueries],
    ['http_bad_headers', 0],
    ['http_qps', (uptime > 0 ? m.httpQueries / uptime : 0).toFixed(6)],
    ['proxy_mode', m.mode === 'middle' ? 2 : 1],
    ['proxy_tag_set', m.tagSet ? 1 : 0],
    ['version', m.version],
  ];
  return lines.map(([k, v]) => `${k}\t${v}\n`).join('');
}
