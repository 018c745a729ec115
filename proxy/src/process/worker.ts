// A worker process: waits for its settings from the primary, listens, serves clients, sends its
// counters to the primary every second, and drains when told to.
import { randomBytes } from 'node:crypto';
import {
  HandshakeThrottle,
  throttleOptions,
  UnidentifiedHandshakes,
} from '../admission/handshake-throttle.js';
import { ConnectionsPerIp } from '../admission/ip-limit.js';
import { resolveDc } from '../direct/dc-table.js';
import { directUpstream } from '../direct/direct-upstream.js';
import { DEFAULT_CLOCK_WINDOW } from '../fake-tls/codec.js';
import type { SiteProfile } from '../fake-tls/site-profile.js';
import { localAddresses, Masker, type SelfEndpoints } from '../masking/mask-relay.js';
import { BacklogBudget } from '../middle/backlog-budget.js';
import { middleUpstream } from '../middle/middle-upstream.js';
import { MiddleProxyPool } from '../middle/pool.js';
import { configFromWire } from '../middle/telegram-config.js';
import { SharedReplayGuard } from '../replay/shared-replay.js';
import { type SessionDeps, sessionServer } from '../session/client-session.js';
import type { ClientMode, FakeTlsPolicy } from '../session/policy.js';
import { WorkerCounters } from '../telemetry/counters.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { SharedUsers, type WireUser } from '../users/shared-users.js';
import { UserGate } from '../users/user-gate.js';
import type { MiddleSettings, PrimaryMessage, WorkerMessage, WorkerSettings } from './ipc.js';
import { installLastResort, lastResort } from './last-resort.js';
import { ClientListener } from './listener.js';

const COUNTERS_INTERVAL_MS = 1000;
/** Interface addresses are looked up again at most this often (for the mask loop check). */
const SELF_REFRESH_MS = 10_000;

function send(message: WorkerMessage, then?: () => void): void {
  if (process.connected) process.send?.(message, undefined, undefined, then);
  else then?.();
}

interface RunningWorker {
  readonly listener: ClientListener;
  readonly pool: MiddleProxyPool | undefined;
  readonly replay: SharedReplayGuard;
  readonly users: SharedUsers;
  readonly gate: UserGate;
}

/** The site profiles in force, by domain; replaced whole by the primary's 'tls-profiles'. */
let tlsProfiles = new Map<string, SiteProfile>();

function setTlsProfiles(profiles: readonly SiteProfile[]): void {
  tlsProfiles = new Map(profiles.map((p) => [p.domain, p]));
}

function fakeTlsPolicy(settings: WorkerSettings): FakeTlsPolicy | undefined {
  if (!settings.modes.includes('tls')) return undefined;
  const skew = settings.tlsClockSkewSeconds;
  setTlsProfiles(settings.tlsProfiles);
  const first = settings.fakeTlsDomains[0];
  return {
    // No SNI (some apps send none) or one accepted by UNKNOWN_SNI=accept: the first domain's shape.
    profile: (sni) =>
      (sni === undefined ? undefined : tlsProfiles.get(sni)) ??
      (first === undefined ? undefined : tlsProfiles.get(first)),
    recordSizes: settings.tlsRecordSizes,
    recordTiming: settings.tlsRecordTiming,
    domains: settings.fakeTlsDomains,
    unknownSni: settings.unknownSni,
    window: { ...DEFAULT_CLOCK_WINDOW, maxAgeSeconds: skew, maxAheadSeconds: skew },
    now: () => Math.floor(Date.now() / 1000),
  };
}

function createMasker(settings: WorkerSettings, log: Logger): Masker | undefined {
  const mask = settings.mask;
  if (mask === undefined) return undefined;
  let self: { endpoints: SelfEndpoints; at: number } | undefined;
  return new Masker({
    target: { host: mask.host, port: mask.port },
    maxBytes: mask.maxBytes,
    timeoutMs: mask.timeoutMs,
    maxRelays: mask.maxRelays,
    connectTimeoutMs: settings.connectTimeoutMs,
    self: () => {
      const now = Date.now();
      if (self === undefined || now - self.at > SELF_REFRESH_MS) {
        self = {
          endpoints: {
            addresses: localAddresses(settings.selfAddresses),
            ports: new Set(settings.selfPorts),
          },
          at: now,
        };
      }
      return self.endpoints;
    },
    onProblem: (check) =>
      log.error(
        check.reason === 'self'
          ? 'mask target refused: it is this proxy; failed connections are held and closed instead'
          : 'mask target unreachable; failed connections are held and closed instead',
        { detail: check.detail },
      ),
  });
}

function createPool(middle: MiddleSettings, counters: WorkerCounters, log: Logger): MiddleProxyPool {
  return new MiddleProxyPool({
    secret: Buffer.from(middle.secretHex, 'hex'),
    config: configFromWire(middle.config),
    externalIp: middle.externalIp,
    observer: counters,
    events: {
      connected: (target, addresses) =>
        log.info('middle proxy connected', {
          target,
          local: `${addresses.local.ip}:${addresses.local.port}`,
          // The address the keys were derived with: the external IP behind NAT (§6.5).
          keyAddress: `${addresses.kdfClient.ip}:${addresses.kdfClient.port}`,
        }),
      connectFailed: (target, error, retryInMs) =>
        log.warn('middle proxy connection failed', { target, error: error.message, retryInMs }),
      lost: (target, error, retryInMs) =>
        log.warn('middle proxy connection lost', { target, error: error?.message, retryInMs }),
    },
  });
}

async function start(settings: WorkerSettings): Promise<RunningWorker> {
  const log = createLogger(settings.logLevel, { component: `worker-${process.pid}` });
  const counters = new WorkerCounters();
  installLastResort(
    lastResort({
      log: (message, fields) => log.error(message, fields),
      count: () => {
        counters.data.uncaughtErrors++;
      },
    }),
  );
  const users = new SharedUsers(settings.users, send, log);
  const gate = new UserGate(users, counters);
  const replay = new SharedReplayGuard(send, log);
  const dcOptions = { overrides: new Map(settings.dcOverrides), preferIpv6: settings.preferIpv6 };
  const perIp = new ConnectionsPerIp(settings.maxConnectionsPerIp);
  const modes = new Set<ClientMode>(settings.modes);
  const pool = settings.middle === undefined ? undefined : createPool(settings.middle, counters, log);
  const tag = settings.middle?.tagHex === undefined ? undefined : Buffer.from(settings.middle.tagHex, 'hex');
  const inner =
    pool === undefined
      ? directUpstream({
          resolveDc: (dc) => resolveDc(dc, dcOptions),
          connectTimeoutMs: settings.connectTimeoutMs,
        })
      : middleUpstream({
          pool,
          externalIp: settings.middle?.externalIp,
          adTag: (user) => users.adTag(user) ?? tag,
          observer: counters,
          acquireTimeoutMs: settings.connectTimeoutMs,
          maxClientBacklog: settings.middleClientBacklog,
          budget: new BacklogBudget(settings.middleBacklogBudget),
        });
  const upstream = gate.wrap(inner);
  const sessionDeps: SessionDeps = {
    users: () => users.table(),
    modes,
    fakeTls: fakeTlsPolicy(settings),
    proxyProtocol: settings.proxyProtocol,
    replay,
    admit: (peer) => perIp.acquire(peer.address),
    mask: createMasker(settings, log),
    upstream,
    handshakeTimeoutMs: settings.handshakeTimeoutMs,
    idleTimeoutMs: settings.idleTimeoutMs,
    random: randomBytes,
    observer: counters,
    throttle:
      settings.failedHandshakeRate > 0
        ? new HandshakeThrottle(throttleOptions(settings.failedHandshakeRate))
        : undefined,
    unidentified: new UnidentifiedHandshakes(settings.maxUnidentifiedHandshakes),
    onFailure: (peer, reason) => {
      if (log.isDebugEnabled()) {
        log.debug('handshake failed', { client: peer ? `${peer.address}:${peer.port}` : 'unknown', reason });
      }
    },
  };
  const serveClient = sessionServer(sessionDeps);
  const listener = new ClientListener({
    port: settings.port,
    bind: settings.bind,
    maxConnections: settings.maxConnections,
    onRefused: () => counters.refusedAtLimit(),
    onConnection: (socket) => {
      counters.accepted();
      serveClient(socket);
    },
  });
  const report = (): void => {
    const cpu = process.cpuUsage();
    // rss() reads /proc and throws EMFILE when descriptors run out: keep the last figure then.
    try {
      counters.data.rssBytes = process.memoryUsage.rss();
    } catch {}
    counters.data.cpuSeconds = (cpu.user + cpu.system) / 1e6;
    if (pool !== undefined) {
      counters.data.middle.readyTargets = pool.readyTargets;
      counters.data.middle.declaredTargets = pool.declaredTargets;
      counters.data.middle.readyConnections = pool.readyConnections;
      counters.data.readyTargetKeys = pool
        .targetStats()
        .filter((t) => t.declared && t.ready > 0)
        .map((t) => t.target);
    }
    send({ type: 'counters', counters: counters.data });
  };
  setInterval(() => {
    try {
      report();
    } catch (err) {
      log.warn('counters not reported', { error: (err as Error).message });
    }
  }, COUNTERS_INTERVAL_MS).unref();
  await listener.listen();
  report();
  log.debug('worker listening', { port: settings.port });
  pool?.start();
  return { listener, pool, replay, users, gate };
}

export function runWorker(): void {
  let running: RunningWorker | undefined;
  let starting = false;
  /** A user table that arrived while the worker was still starting. */
  let pendingUsers: readonly WireUser[] | undefined;
  process.on('message', (msg: PrimaryMessage) => {
    switch (msg.type) {
      case 'start':
        if (starting) return;
        starting = true;
        start(msg.settings).then(
          (r) => {
            running = r;
            if (pendingUsers !== undefined) r.users.replace(pendingUsers);
            send({ type: 'listening' });
          },
          (err: NodeJS.ErrnoException) => {
            send({ type: 'listen-failed', code: err.code ?? 'UNKNOWN', message: err.message }, () =>
              process.exit(1),
            );
          },
        );
        return;
      case 'replay-answer':
        running?.replay.answer(msg);
        return;
      case 'middle-config':
        // New clients go to the new targets; clients already bound keep their connection.
        running?.pool?.applySecret(Buffer.from(msg.secretHex, 'hex'));
        running?.pool?.applyConfig(configFromWire(msg.config));
        return;
      case 'tls-profiles':
        setTlsProfiles(msg.profiles);
        return;
      case 'admit-answer':
        running?.users.answer(msg);
        return;
      case 'users':
        // New connections use the new table at once; connections of revoked users are closed.
        if (running === undefined) {
          pendingUsers = msg.users;
          return;
        }
        running.users.replace(msg.users);
        running.gate.revoke(msg.revoke);
        return;
      case 'drain':
        void (running?.listener.drain(msg.timeoutMs) ?? Promise.resolve()).then(() => process.exit(0));
        return;
    }
  });
  // The primary going away must not leave orphaned workers holding the port.
  process.on('disconnect', () => process.exit(0));
  // SIGTERM/SIGINT are the primary's to handle; it tells us to drain.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
}
