// Adding up counter snapshots: every worker's, plus what workers that have since exited counted,
// so that totals never go backwards when a worker is restarted.
import { type CounterSnapshot, emptySnapshot, emptyUserCounters } from './counters.js';

type Numeric = Record<string, number>;

function addRecord(into: Numeric, from: Readonly<Numeric>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

export function addSnapshot(into: CounterSnapshot, from: CounterSnapshot): void {
  into.connectionsOpened += from.connectionsOpened;
  into.connectionsCurrent += from.connectionsCurrent;
  into.connectionsEstablished += from.connectionsEstablished;
  into.acceptRefusedLimit += from.acceptRefusedLimit;
  into.tlsHandshakesOk += from.tlsHandshakesOk;
  into.masked += from.masked;
  addRecord(into.refused as Numeric, from.refused as Numeric);
  addRecord(into.maskFailures as Numeric, from.maskFailures as Numeric);
  into.upstreamCurrent += from.upstreamCurrent;
  into.bytesFromClient += from.bytesFromClient;
  into.bytesToClient += from.bytesToClient;
  into.rssBytes += from.rssBytes;
  into.uncaughtErrors += from.uncaughtErrors ?? 0;
  into.cpuSeconds += from.cpuSeconds;
  addRecord(into.handshakesOk, from.handshakesOk);
  addRecord(into.handshakesFailed as Numeric, from.handshakesFailed as Numeric);
  addRecord(into.closed as Numeric, from.closed as Numeric);
  addRecord(into.upstreamConnects, from.upstreamConnects);
  addRecord(into.upstreamFailures, from.upstreamFailures);
  addRecord(into.middle as unknown as Numeric, from.middle as unknown as Numeric);
  for (const [name, row] of Object.entries(from.perUser)) {
    const target = into.perUser[name] ?? emptyUserCounters();
    into.perUser[name] = target;
    target.connections += row.connections;
    target.current += row.current;
    target.fromClient += row.fromClient;
    target.toClient += row.toClient;
    addRecord(target.refused as Numeric, row.refused as Numeric);
  }
}

export function sumSnapshots(snapshots: Iterable<CounterSnapshot>): CounterSnapshot {
  const total = emptySnapshot();
  for (const s of snapshots) addSnapshot(total, s);
  return total;
}

/** What an exited worker leaves behind: its totals, but none of its "current" gauges. */
export function retire(snapshot: CounterSnapshot): CounterSnapshot {
  const copy = sumSnapshots([snapshot]);
  copy.connectionsCurrent = 0;
  copy.upstreamCurrent = 0;
  copy.rssBytes = 0;
  for (const row of Object.values(copy.perUser)) row.current = 0;
  copy.middle.extConnections = 0;
  copy.middle.readyConnections = 0;
  copy.middle.declaredTargets = 0;
  copy.middle.readyTargets = 0;
  return copy;
}
