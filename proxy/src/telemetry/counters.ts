// A worker's running totals. Plain numbers, cheap to bump on the hot path and cheap to send to the
// primary, which adds up every worker's snapshot for /stats and /metrics.

import type { MiddleObserver } from '../middle/events.js';
import type { Transport } from '../protocol/obfuscated2.js';
import type {
  CloseReason,
  Framing,
  HandshakeFailure,
  MaskFailure,
  RefusalReason,
  SessionObserver,
  UserRefusal,
} from '../session/events.js';

/** Middle-proxy mode figures (zero in direct mode); the names follow the official /stats keys. */
export interface MiddleCounters {
  forwardedQueries: number;
  droppedQueries: number;
  forwardedResponses: number;
  droppedResponses: number;
  forwardedSimpleAcks: number;
  droppedSimpleAcks: number;
  /** Clients bound to a middle-end connection now, and such bindings made since start. */
  extConnections: number;
  extConnectionsCreated: number;
  /** Middle-end connections open and ready for traffic. */
  readyConnections: number;
  /** Middle-end targets in the current config, and those we hold a ready connection to. */
  declaredTargets: number;
  readyTargets: number;
  /** Clients closed for letting answers pile up unread (official connections_failed_flood). */
  connectionsFailedFlood: number;
}

export interface CounterSnapshot {
  connectionsOpened: number;
  connectionsCurrent: number;
  connectionsEstablished: number;
  acceptRefusedLimit: number;
  /** Every refusal before a handshake, by reason (max_connections included). */
  refused: Partial<Record<RefusalReason, number>>;
  /** Authenticated handshakes that came inside fake TLS (also counted in handshakesOk). */
  tlsHandshakesOk: number;
  /** Failed connections relayed to the mask host, and those that could not be. */
  masked: number;
  maskFailures: Partial<Record<MaskFailure, number>>;
  handshakesOk: Record<Transport, number>;
  handshakesFailed: Partial<Record<HandshakeFailure, number>>;
  closed: Partial<Record<CloseReason, number>>;
  upstreamConnects: Record<string, number>;
  upstreamFailures: Record<string, number>;
  upstreamCurrent: number;
  bytesFromClient: number;
  bytesToClient: number;
  middle: MiddleCounters;
  /** Exceptions caught by the worker's last resort (process/last-resort.ts); it kept serving. */
  uncaughtErrors: number;
  /** The worker process itself, filled in when the snapshot is sent. */
  rssBytes: number;
  cpuSeconds: number;
  /**
   * Middle mode: the targets this worker holds a ready connection to. Not added up across workers:
   * the primary counts distinct targets from every worker's list.
   */
  readyTargetKeys: string[];
  /** Per user (secret name): totals since start, and connections open now. */
  perUser: Record<string, UserCounters>;
}

export interface UserCounters {
  connections: number;
  current: number;
  fromClient: number;
  toClient: number;
  refused: Partial<Record<UserRefusal, number>>;
}

export function emptyUserCounters(): UserCounters {
  return { connections: 0, current: 0, fromClient: 0, toClient: 0, refused: {} };
}

/**
 * DC ids Telegram uses (production, media and test DCs 1..5, and 203); any other id a client puts
 * in its header is counted as `other`, so one client cannot create 65 536 metric series.
 */
const KNOWN_DCS = new Set<number>();
for (const base of [1, 2, 3, 4, 5, 203]) {
  for (const id of [base, -base, 10000 + base, -(10000 + base)]) KNOWN_DCS.add(id);
}

export function dcLabel(dc: number): string {
  return KNOWN_DCS.has(dc) ? String(dc) : 'other';
}

export function emptySnapshot(): CounterSnapshot {
  return {
    connectionsOpened: 0,
    connectionsCurrent: 0,
    connectionsEstablished: 0,
    acceptRefusedLimit: 0,
    refused: {},
    tlsHandshakesOk: 0,
    masked: 0,
    maskFailures: {},
    handshakesOk: { abridged: 0, intermediate: 0, padded: 0 },
    handshakesFailed: {},
    closed: {},
    upstreamConnects: {},
    upstreamFailures: {},
    upstreamCurrent: 0,
    bytesFromClient: 0,
    bytesToClient: 0,
    uncaughtErrors: 0,
    middle: {
      forwardedQueries: 0,
      droppedQueries: 0,
      forwardedResponses: 0,
      droppedResponses: 0,
      forwardedSimpleAcks: 0,
      droppedSimpleAcks: 0,
      extConnections: 0,
      extConnectionsCreated: 0,
      readyConnections: 0,
      declaredTargets: 0,
      readyTargets: 0,
      connectionsFailedFlood: 0,
    },
    rssBytes: 0,
    cpuSeconds: 0,
    readyTargetKeys: [],
    perUser: {},
  };
}

export class WorkerCounters implements SessionObserver, MiddleObserver {
  readonly data: CounterSnapshot = emptySnapshot();

  accepted(): void {
    this.data.connectionsOpened++;
    this.data.connectionsCurrent++;
  }

  refusedAtLimit(): void {
    this.data.acceptRefusedLimit++;
    this.data.refused.max_connections = (this.data.refused.max_connections ?? 0) + 1;
  }

  refused(reason: RefusalReason): void {
    this.data.refused[reason] = (this.data.refused[reason] ?? 0) + 1;
  }

  masked(): void {
    this.data.masked++;
  }

  maskFailed(reason: MaskFailure): void {
    this.data.maskFailures[reason] = (this.data.maskFailures[reason] ?? 0) + 1;
  }

  #user(name: string): UserCounters {
    let row = this.data.perUser[name];
    if (row === undefined) {
      row = emptyUserCounters();
      this.data.perUser[name] = row;
    }
    return row;
  }

  handshakeOk(user: string, transport: Transport, _dc: number, framing: Framing): void {
    this.data.handshakesOk[transport]++;
    if (framing === 'tls') this.data.tlsHandshakesOk++;
    this.#user(user).connections++;
  }

  userRefused(user: string, reason: UserRefusal): void {
    const row = this.#user(user);
    row.refused[reason] = (row.refused[reason] ?? 0) + 1;
  }

  /** An admitted connection of `user` opened (+1) or ended (-1). */
  userCurrent(user: string, delta: 1 | -1): void {
    this.#user(user).current += delta;
  }

  handshakeFailed(reason: HandshakeFailure): void {
    this.data.handshakesFailed[reason] = (this.data.handshakesFailed[reason] ?? 0) + 1;
  }

  upstreamConnected(dc: number): void {
    this.data.connectionsEstablished++;
    this.data.upstreamCurrent++;
    const label = dcLabel(dc);
    this.data.upstreamConnects[label] = (this.data.upstreamConnects[label] ?? 0) + 1;
  }

  upstreamFailed(dc: number): void {
    const label = dcLabel(dc);
    this.data.upstreamFailures[label] = (this.data.upstreamFailures[label] ?? 0) + 1;
  }

  relayed(user: string, fromClient: number, toClient: number): void {
    this.data.bytesFromClient += fromClient;
    this.data.bytesToClient += toClient;
    const row = this.#user(user);
    row.fromClient += fromClient;
    row.toClient += toClient;
  }

  forwardedQuery(): void {
    this.data.middle.forwardedQueries++;
  }

  droppedQuery(): void {
    this.data.middle.droppedQueries++;
  }

  forwardedResponse(): void {
    this.data.middle.forwardedResponses++;
  }

  droppedResponse(): void {
    this.data.middle.droppedResponses++;
  }

  forwardedSimpleAck(): void {
    this.data.middle.forwardedSimpleAcks++;
  }

  droppedSimpleAck(): void {
    this.data.middle.droppedSimpleAcks++;
  }

  clientBound(): void {
    this.data.middle.extConnections++;
    this.data.middle.extConnectionsCreated++;
  }

  clientReleased(): void {
    this.data.middle.extConnections--;
  }

  clientFlooded(): void {
    this.data.middle.connectionsFailedFlood++;
  }

  closed(reason: CloseReason, established: boolean): void {
    this.data.connectionsCurrent--;
    if (established) this.data.upstreamCurrent--;
    this.data.closed[reason] = (this.data.closed[reason] ?? 0) + 1;
  }
}
