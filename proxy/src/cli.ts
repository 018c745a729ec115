#!/usr/bin/env node
// `mtproxy`: the proxy's command line. The same file runs as the primary and as every worker.
import cluster from 'node:cluster';
import { startProxy } from './app/start-primary.js';
import { runProxyWorker } from './app/start-worker.js';

if (cluster.isPrimary) {
  startProxy(process.env, process.argv.slice(2)).then(
    (code) => {
      if (code !== undefined) process.exit(code);
    },
    (err: Error) => {
      process.stderr.write(`mtproxy: ${err.message}\n`);
      process.exit(1);
    },
  );
} else {
  runProxyWorker();
}
