// The primary process: settles the configuration once (secrets, addresses), prints the banner,
// forks the workers, restarts a worker that dies, and drains everything on SIGTERM.
import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../config/config.js';
import type { SiteProfile } from '../fake-tls/site-profile.js';
import type { WireProxyConfig } from '../middle/telegram-config.js';
import type { ReplayFigures, ReplayService } from '../replay/replay-cache.js';
import type { UserRefusal } from '../session/events.js';
import type { StoreReplay } from '../state/store-replay.js';
import { addSnapshot, retire, sumSnapshots } from '../telemetry/aggregate.js';
import { type CounterSnapshot, emptySnapshot } from '../telemetry/counters.js';
import type { Logger } from '../telemetry/logger.js';
import type { WireUser } from '../users/shared-users.js';
import type { PrimaryMessage, WorkerMessage, WorkerSettings } from './ipc.js';
import { workerExecArgv } from './worker-heap.js';

/** What the primary needs from the users service (users/users-service.ts). */
export interface PrimaryUsers {
  admit(user: string, ip: string): UserRefusal | undefined | Promise<UserRefusal | undefined>;
  release(user: string, ip: string): void;
  countBytes(workerId: number, perUser: CounterSnapshot['perUser']): void;
  workerGone(workerId: number): void;
}

const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A worker that lived this long is considered healthy, and the restart delay starts over. */
const HEALTHY_AFTER_MS = 60_000;
const KILL_GRACE_MS = 2_000;

export interface PrimaryHandle {
  /** Resolves when every worker is listening. */
  readonly ready: Promise<void>;
  /** Resolves when the primary has shut down (after a drain). */
  readonly stopped: Promise<void>;
  readonly workers: () => readonly Worker[];
  readonly shutdown: (signal: string) => Promise<void>;
  /** Every worker's counters added up, including workers that have exited since. */
  readonly totals: () => CounterSnapshot;
  readonly workerRestarts: () => number;
  /** Workers that are up and listening now. */
  readonly listeningWorkers: () => number;
  /** Middle mode: distinct targets that at least one worker holds a ready connection to. */
  readonly readyTargets: () => number;
  /** Sends a new Telegram proxy secret and config to every worker (and to workers started later). */
  readonly broadcastMiddle: (secretHex: string, config: WireProxyConfig) => void;
  /** Sends a new user table to every worker (and to workers started later), closing `revoke`. */
  readonly broadcastUsers: (users: readonly WireUser[], revoke: readonly string[]) => void;
  /** The replay cache's size, capacity, oldest entry and refusals. */
  readonly replayFigures: () => ReplayFigures;
  /** Sends new fake-TLS site profiles to every worker (and to workers started later). */
  readonly broadcastTlsProfiles: (profiles: readonly SiteProfile[]) => void;
}

export function runPrimary(
  config: Config,
  initialSettings: WorkerSettings,
  users: PrimaryUsers,
  replay: ReplayService,
  log: Logger,
  shared?: StoreReplay,
): PrimaryHandle {
  let settings = initialSettings;
  /** Admissions each worker holds, so that a worker's death gives its users' places back. */
  const admitted = new Map<Worker, Map<string, number>>();
  const admissionKey = (user: string, ip: string): string => `${user}\u0000${ip}`;
  let shuttingDown = false;
  let restartDelay = RESTART_MIN_MS;
  const startedAt = new Map<Worker, number>();
  const live = new Set<Worker>();
  const listening = new Set<Worker>();
  const latest = new Map<Worker, CounterSnapshot>();
  const retired = emptySnapshot();
  let restarts = 0;
  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });

  const send = (worker: Worker, message: PrimaryMessage): void => {
    if (worker.isConnected()) worker.send(message);
  };

  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) });
  const fork = (): Promise<void> => {
    const worker = cluster.fork();
    live.add(worker);
    startedAt.set(worker, Date.now());
    return new Promise((resolve, reject) => {
      worker.on('message', (msg: WorkerMessage) => {
        switch (msg.type) {
          case 'replay-check': {
            const fps = msg.fingerprints;
            const local = msg.ids.map((_, i) => replay.check(fps[2 * i]! >>> 0, fps[2 * i + 1]! >>> 0));
            if (shared === undefined) {
              send(worker, { type: 'replay-answer', ids: msg.ids, verdicts: local });
              return;
            }
            // What this pod's cache let through is claimed in the store: one pipelined round trip.
            void Promise.all(
              local.map((v, i) => (v === 'fresh' ? shared.claim(fps[2 * i]!, fps[2 * i + 1]!) : v)),
            ).then((verdicts) => send(worker, { type: 'replay-answer', ids: msg.ids, verdicts }));
            return;
          }
          case 'counters':
            latest.set(worker, msg.counters);
            users.countBytes(worker.id, msg.counters.perUser);
            return;
          case 'admit': {
            const answer = (refusal: UserRefusal | undefined): void => {
              if (refusal === undefined) {
                if (!live.has(worker)) {
                  // The worker died while the store was asked: nobody will release this one.
                  users.release(msg.user, msg.ip);
                  return;
                }
                const held = admitted.get(worker) ?? new Map<string, number>();
                admitted.set(worker, held);
                const key = admissionKey(msg.user, msg.ip);
                held.set(key, (held.get(key) ?? 0) + 1);
              }
              send(worker, { type: 'admit-answer', id: msg.id, refusal });
            };
            const refusal = users.admit(msg.user, msg.ip);
            if (refusal instanceof Promise) void refusal.then(answer);
            else answer(refusal);
            return;
          }
          case 'release': {
            const held = admitted.get(worker);
            const key = admissionKey(msg.user, msg.ip);
            const n = held?.get(key) ?? 0;
            if (n === 0) return;
            if (n === 1) held!.delete(key);
            else held!.set(key, n - 1);
            users.release(msg.user, msg.ip);
            return;
          }
          case 'listening':
            listening.add(worker);
            resolve();
            return;
          case 'listen-failed':
            reject(listenError(config, msg.code, msg.message));
            return;
        }
      });
      worker.once('online', () => send(worker, { type: 'start', settings }));
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    live.delete(worker);
    for (const [key, n] of admitted.get(worker) ?? []) {
      const [user, ip] = key.split('\u0000') as [string, string];
      for (let i = 0; i < n; i++) users.release(user, ip);
    }
    admitted.delete(worker);
    users.workerGone(worker.id);
    listening.delete(worker);
    const last = latest.get(worker);
    if (last) addSnapshot(retired, retire(last));
    latest.delete(worker);
    const lived = Date.now() - (startedAt.get(worker) ?? Date.now());
    startedAt.delete(worker);
    if (shuttingDown) return;
    restarts++;
    log.error('worker died; restarting it', { pid: worker.process.pid, code, signal, livedMs: lived });
    restartDelay = lived > HEALTHY_AFTER_MS ? RESTART_MIN_MS : Math.min(restartDelay * 2, RESTART_MAX_MS);
    setTimeout(() => {
      if (shuttingDown) return;
      fork().then(
        () => log.info('worker restarted'),
        (err: Error) => log.error('restarted worker failed to listen', { error: err.message }),
      );
    }, restartDelay).unref();
  });

  const ready = Promise.all(Array.from({ length: config.workers }, fork)).then(() => {
    log.info('proxy listening', {
      port: config.port,
      bind: config.bind ?? 'all addresses',
      workers: config.workers,
    });
  });

  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) return stopped;
    shuttingDown = true;
    log.info('drain started', { signal, timeoutSeconds: config.drainTimeoutMs / 1000 });
    for (const worker of live) send(worker, { type: 'drain', timeoutMs: config.drainTimeoutMs });
    const deadline = Date.now() + config.drainTimeoutMs + KILL_GRACE_MS;
    while (live.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const worker of live) worker.process.kill('SIGKILL');
    log.info('drain finished', { killed: live.size });
    resolveStopped();
  };

  return {
    ready,
    stopped,
    workers: () => [...live],
    shutdown,
    totals: () => sumSnapshots([retired, ...latest.values()]),
    workerRestarts: () => restarts,
    listeningWorkers: () => listening.size,
    readyTargets: () => new Set([...latest.values()].flatMap((s) => s.readyTargetKeys)).size,
    broadcastMiddle: (secretHex, wireConfig) => {
      if (settings.middle === undefined) return;
      settings = { ...settings, middle: { ...settings.middle, secretHex, config: wireConfig } };
      for (const worker of live) send(worker, { type: 'middle-config', secretHex, config: wireConfig });
    },
    broadcastTlsProfiles: (profiles) => {
      settings = { ...settings, tlsProfiles: profiles };
      for (const worker of live) send(worker, { type: 'tls-profiles', profiles });
    },
    broadcastUsers: (wire, revoke) => {
      settings = { ...settings, users: wire };
      for (const worker of live) send(worker, { type: 'users', users: wire, revoke });
    },
    replayFigures: () => replay.figures(),
  };
}

function listenError(config: Config, code: string, message: string): Error {
  if (code === 'EACCES' && config.port < 1024) {
    return new Error(
      `PORT: cannot listen on port ${config.port} (${message}). Ports below 1024 need root or the ` +
        'CAP_NET_BIND_SERVICE capability; use a port such as 8443 and forward 443 to it, or grant the capability',
    );
  }
  if (code === 'EADDRINUSE') {
    return new Error(
      `PORT: port ${config.port} is already in use by another program (${message}). Choose another PORT`,
    );
  }
  if (code === 'EADDRNOTAVAIL') {
    return new Error(`BIND: ${config.bind} is not an address of this machine (${message})`);
  }
  return new Error(`cannot listen on port ${config.port}: ${message}`);
}
