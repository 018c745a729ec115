// The floor of our design: the proxy's process model (a primary forking workers that each listen
// with SO_REUSEPORT) and its relay style (gather the 64-byte header, pause, dial, then pump both
// ways with pause/resume backpressure and an idle timer), with no crypto, no secrets, no replay
// check and no counters. Bytes are forwarded untouched, so the benchmark's clients send the
// secretless header a DC expects and the echo DC answers them directly.
//
// Its workers get the same V8 young-generation bound as ours (proxy/src/process/worker-heap.ts).
//
// Environment: PORT, WORKERS (default 1), DC_PORT (the echo DC on 127.0.0.1).
// Prints "plain relay listening" once every worker listens; exits, workers first, on SIGTERM.
import cluster from 'node:cluster';
import { connect, createServer, type Socket } from 'node:net';
import { workerExecArgv } from '../proxy/src/process/worker-heap.js';

const HEADER_LEN = 64;
const IDLE_TIMEOUT_MS = 300_000;

const port = Number(process.env.PORT);
const dcPort = Number(process.env.DC_PORT);
const workers = Number(process.env.WORKERS ?? '1');

/** Same shape as proxy/src/direct/pump.ts: pause the reader when the writer's buffer is full. */
function forward(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
}

function serve(client: Socket): void {
  client.setNoDelay(true);
  client.on('error', () => {});
  let upstream: Socket | undefined;
  const finish = (): void => {
    client.destroy();
    upstream?.destroy();
  };
  client.once('close', finish);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const onHeader = (chunk: Buffer): void => {
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes < HEADER_LEN) return;
    client.off('data', onHeader);
    client.pause();
    const received = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    pending = [];
    const dc = connect({ host: '127.0.0.1', port: dcPort, noDelay: true });
    upstream = dc;
    dc.on('error', () => {});
    dc.once('close', finish);
    dc.once('connect', () => {
      client.setTimeout(IDLE_TIMEOUT_MS, finish);
      dc.write(received);
      forward(client, dc);
      forward(dc, client);
      client.resume();
    });
  };
  client.on('data', onHeader);
}

if (cluster.isPrimary) {
  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) });
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    const worker = cluster.fork();
    worker.on('message', (msg: string) => {
      if (msg === 'listening' && ++listening === workers) process.stdout.write('plain relay listening\n');
    });
  }
  // Workers exit on SIGTERM through process.exit, so that profilers write their files.
  process.once('SIGTERM', () => {
    const left = Object.values(cluster.workers ?? {});
    if (left.length === 0) process.exit(0);
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
    for (const worker of left) worker?.process.kill('SIGTERM');
  });
} else {
  process.once('SIGTERM', () => process.exit(0));
  const server = createServer({ noDelay: true }, serve);
  server.listen({ port, host: '127.0.0.1', exclusive: true, reusePort: true }, () =>
    process.send?.('listening'),
  );
  process.on('disconnect', () => process.exit(0));
}
