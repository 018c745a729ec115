// A worker's parts, wired from its settings: the upstream (direct or middle), the users and their
// gate, the replay guard, masking, the listener; each registers the messages it answers from the
// primary. Counters go to the primary every second.
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
import { profilesOverIpc } from '../fake-tls/profile-messages.js';
import { createLogger, type Logger } from '../log/logger.js';
import { localAddresses, Masker, type SelfEndpoints } from '../masking/mask-relay.js';
import { BacklogBudget } from '../middle/backlog-budget.js';
import { configFromWire, followMiddleConfig, type MiddleSettings } from '../middle/config-messages.js';
import { middleUpstream } from '../middle/middle-upstream.js';
import { MiddleProxyPool } from '../middle/pool.js';
import { installLastResort, lastResort } from '../process/last-resort.js';
import { ClientListener } from '../process/listener.js';
import { type RunningWorker, runWorker, type WorkerIpc } from '../process/worker.js';
import { replayGuardOverIpc } from '../replay/shared-replay.js';
import { type SessionDeps, sessionServer } from '../session/client-session.js';
import type { ClientMode, FakeTlsPolicy } from '../session/policy.js';
import { WorkerCounters } from '../telemetry/counters.js';
import { COUNTERS } from '../telemetry/worker-totals.js';
import { usersOverIpc } from '../users/shared-users.js';
import type { WorkerSettings } from './worker-settings.js';

const COUNTERS_INTERVAL_MS = 1000;
/** Interface addresses are looked up again at most this often (for the mask loop check). */
const SELF_REFRESH_MS = 10_000;

function fakeTlsPolicy(settings: WorkerSettings, ipc: WorkerIpc): FakeTlsPolicy | undefined {
  if (!settings.modes.includes('tls')) return undefined;
  const skew = settings.tlsClockSkewSeconds;
  return {
    profile: profilesOverIpc(ipc, settings.tlsProfiles, settings.fakeTlsDomains[0]),
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

async function start(settings: WorkerSettings, ipc: WorkerIpc): Promise<RunningWorker> {
  const log = createLogger(settings.logLevel, { component: `worker-${process.pid}` });
  ipc.reportDrops(log);
  const counters = new WorkerCounters();
  installLastResort(
    lastResort({
      log: (message, fields) => log.error(message, fields),
      count: () => {
        counters.data.uncaughtErrors++;
      },
    }),
  );
  const { users, gate } = usersOverIpc(ipc, settings.users, counters, log);
  const replay = replayGuardOverIpc(ipc, log);
  const dcOptions = { overrides: new Map(settings.dcOverrides), preferIpv6: settings.preferIpv6 };
  const perIp = new ConnectionsPerIp(settings.maxConnectionsPerIp);
  const modes = new Set<ClientMode>(settings.modes);
  const pool = settings.middle === undefined ? undefined : createPool(settings.middle, counters, log);
  if (pool !== undefined) followMiddleConfig(ipc, pool);
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
    fakeTls: fakeTlsPolicy(settings, ipc),
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
    ipc.send(COUNTERS, { type: 'counters', counters: counters.data });
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
  return { drain: (timeoutMs) => listener.drain(timeoutMs) };
}

/** Runs this process as a worker of the proxy. */
export function runProxyWorker(): void {
  runWorker(start);
}
