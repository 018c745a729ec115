// A worker process: waits for its settings from the primary, listens, serves clients, reports
// counters on request, and drains when told to.
import { randomBytes } from 'node:crypto';
import type { Transport } from '../protocol/obfuscated2.js';
import { serveClient } from '../relay/client-session.js';
import { WorkerCounters } from '../telemetry/counters.js';
import { createLogger } from '../telemetry/logger.js';
import { resolveDc } from '../upstream/dc-table.js';
import type { PrimaryMessage, WorkerMessage, WorkerSettings } from './ipc.js';
import { ClientListener } from './listener.js';
import { ReplayCache } from './replay-cache.js';

const ALL_TRANSPORTS: ReadonlySet<Transport> = new Set(['abridged', 'intermediate', 'padded']);

function send(message: WorkerMessage): void {
  process.send?.(message);
}

async function start(settings: WorkerSettings): Promise<ClientListener> {
  const log = createLogger(settings.logLevel, { component: `worker-${process.pid}` });
  const counters = new WorkerCounters();
  const secrets = settings.secretsHex.map((h) => Buffer.from(h, 'hex'));
  const replay = new ReplayCache();
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
  process.on('message', (msg: PrimaryMessage) => {
    if (msg.type === 'snapshot') send({ type: 'snapshot', id: msg.id, counters: counters.data });
  });
  await listener.listen();
  log.debug('worker listening', { port: settings.port });
  return listener;
}

export function runWorker(): void {
  let listener: ClientListener | undefined;
  process.on('message', (msg: PrimaryMessage) => {
    if (msg.type === 'start' && listener === undefined) {
      start(msg.settings).then(
        (l) => {
          listener = l;
          send({ type: 'listening' });
        },
        (err: NodeJS.ErrnoException) => {
          send({ type: 'listen-failed', code: err.code ?? 'UNKNOWN', message: err.message });
          process.exit(1);
        },
      );
    } else if (msg.type === 'drain') {
      void (listener?.drain(msg.timeoutMs) ?? Promise.resolve()).then(() => process.exit(0));
    }
  });
  // The primary going away must not leave orphaned workers holding the port.
  process.on('disconnect', () => process.exit(0));
  // SIGTERM/SIGINT are the primary's to handle; it tells us to drain.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
}
