// A worker process: waits for its settings from the primary, listens, serves clients, sends its
// counters to the primary every second, and drains when told to.
import { randomBytes } from 'node:crypto';
import type { Transport } from '../protocol/obfuscated2.js';
import { serveClient } from '../relay/client-session.js';
import { WorkerCounters } from '../telemetry/counters.js';
import { createLogger } from '../telemetry/logger.js';
import { resolveDc } from '../upstream/dc-table.js';
import type { PrimaryMessage, WorkerMessage, WorkerSettings } from './ipc.js';
import { ClientListener } from './listener.js';
import { SharedReplayGuard } from './shared-replay.js';

const ALL_TRANSPORTS: ReadonlySet<Transport> = new Set(['abridged', 'intermediate', 'padded']);
const COUNTERS_INTERVAL_MS = 1000;

function send(message: WorkerMessage, then?: () => void): void {
  if (process.connected) process.send?.(message, undefined, undefined, then);
  else then?.();
}

interface RunningWorker {
  readonly listener: ClientListener;
  readonly replay: SharedReplayGuard;
}

async function start(settings: WorkerSettings): Promise<RunningWorker> {
  const log = createLogger(settings.logLevel, { component: `worker-${process.pid}` });
  const counters = new WorkerCounters();
  const secrets = settings.secretsHex.map((h) => Buffer.from(h, 'hex'));
  const replay = new SharedReplayGuard(send);
  const dcOptions = { overrides: new Map(settings.dcOverrides), preferIpv6: settings.preferIpv6 };
  const listener = new ClientListener({
    port: settings.port,
    bind: settings.bind,
    maxConnections: settings.maxConnections,
    onRefused: () => counters.refusedAtLimit(),
    onConnection: (socket) => {
      counters.accepted();
      serveClient(socket, {
        secrets: () => secrets,
        allowedTransports: ALL_TRANSPORTS,
        replay,
        resolveDc: (dc) => resolveDc(dc, dcOptions),
        handshakeTimeoutMs: settings.handshakeTimeoutMs,
        idleTimeoutMs: settings.idleTimeoutMs,
        connectTimeoutMs: settings.connectTimeoutMs,
        random: randomBytes,
        observer: counters,
      });
    },
  });
  const report = (): void => {
    const cpu = process.cpuUsage();
    counters.data.rssBytes = process.memoryUsage.rss();
    counters.data.cpuSeconds = (cpu.user + cpu.system) / 1e6;
    send({ type: 'counters', counters: counters.data });
  };
  setInterval(report, COUNTERS_INTERVAL_MS).unref();
  await listener.listen();
  report();
  log.debug('worker listening', { port: settings.port });
  return { listener, replay };
}

export function runWorker(): void {
  let running: RunningWorker | undefined;
  let starting = false;
  process.on('message', (msg: PrimaryMessage) => {
    switch (msg.type) {
      case 'start':
        if (starting) return;
        starting = true;
        start(msg.settings).then(
          (r) => {
            running = r;
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
