// What the benchmark's runner and its load-client processes say to each other over IPC.
import type { ClientMode } from './client-conn.js';

interface Target {
  readonly port: number;
  readonly mode: ClientMode;
  /** The 16-byte client secret, hex. */
  readonly secretHex: string;
  readonly domain: string;
  readonly timeoutMs: number;
}

/** Connections that keep `windowBytes` of packets in flight each, as fast as the echo comes back. */
export interface StreamSpec extends Target {
  readonly kind: 'stream';
  readonly connections: number;
  readonly packetSize: number;
  readonly windowBytes: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

/** `concurrency` loops of: connect, authenticate, one 64-byte packet echoed, close. */
export interface HandshakeSpec extends Target {
  readonly kind: 'handshakes';
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

/** One connection, one 64-byte packet at a time with a pause between them. */
export interface LatencySpec extends Target {
  readonly kind: 'latency';
  readonly samples: number;
  readonly warmupSamples: number;
  readonly gapMs: number;
}

/** `count` authenticated connections (each saw one echo), held open until told to finish. */
export interface IdleSpec extends Target {
  readonly kind: 'idle';
  readonly count: number;
  readonly concurrency: number;
}

export type LoadSpec = StreamSpec | HandshakeSpec | LatencySpec | IdleSpec;

export interface LoadCounters {
  readonly sentBytes: number;
  readonly receivedBytes: number;
  readonly packets: number;
  readonly handshakes: number;
  readonly elapsedMs: number;
}

export interface LoadResult {
  /** Every packet sent came back identical, and nothing is missing. */
  readonly verified: boolean;
  readonly errors: readonly string[];
  readonly failures: number;
  readonly packetsVerified: number;
  /** Latency runs: round trips in microseconds, sorted. */
  readonly rttMicros?: readonly number[];
}

export type RunnerMessage =
  | { readonly type: 'run'; readonly spec: LoadSpec }
  | { readonly type: 'measure' }
  | { readonly type: 'finish' };

export type ClientMessage =
  | { readonly type: 'ready' }
  /** Warmed up (stream, handshakes) or every connection open (idle): sample the proxy now. */
  | { readonly type: 'warm'; readonly open: number }
  | { readonly type: 'measured'; readonly counters: LoadCounters }
  | { readonly type: 'result'; readonly result: LoadResult };
