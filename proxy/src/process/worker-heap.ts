// The young generation of a worker's V8 heap, bounded.
//
// V8 grows the young generation (new objects, before they are promoted) each time more bytes
// survived its collections than it holds, up to 64 MB on 64-bit Node without pointer
// compression (73 MB committed, measured). A worker accepting thousands of connections in a burst is exactly that
// case: every connection's objects survive. The space stays committed while the worker is idle
// (nothing collects it), so at 10000 idle connections it was half of the worker's growth: 9 of
// 19 KB per connection (`npm run bench -- --only mtkube/idle`). With 8 MB semi-spaces the same
// run measures 9.7 KB, and CPU per GB relayed and per handshake stay where they were.
// NODE_OPTIONS or the command line can still set --max-semi-space-size; that value wins.

/** MB per semi-space for workers (the young generation is two of them). */
export const WORKER_SEMI_SPACE_MB = 8;

const FLAG = /^--max[-_]semi[-_]space[-_]size(=|$)/;

/** The Node flags to fork a worker with: the primary's own, plus the bound unless one was given. */
export function workerExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((arg) => FLAG.test(arg));
  return given ? [...execArgv] : [...execArgv, `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`];
}
