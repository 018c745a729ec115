// Child processes of a test control plane. Each one runs in a process group of
// its own (so a Ctrl-C aimed at the test runner does not hit it half-way, and
// stop() can end it and nothing else), logs to a file, and is watched by a
// tiny shell that ends it if this Node process disappears without cleaning up
// (SIGKILL, a CI time-out), so no etcd or apiserver outlives its test run.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface Component {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Resolves with the exit code (or signal name) once the component ended. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
}

// $1 is our PID, $2.. the command. A background loop polls once a second for
// our PID (cheap; a second of leftover process after a hard kill of Node is
// harmless), then ends the component: TERM, and KILL 5 s later, since an API
// server whose etcd is already gone may never finish a graceful shutdown. The
// shell itself meanwhile blocks in `wait`, which a trapped signal
// interrupts at once, so stopping costs no polling delay. The shell exits with
// the component's status once the component is gone.
const watchdog = `
parent=$1; shift
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT HUP
(while kill -0 "$parent" 2>/dev/null; do sleep 1; done; kill -TERM "$child" 2>/dev/null
 sleep 5; kill -KILL "$child" 2>/dev/null) &
watcher=$!
status=0
while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
kill "$watcher" 2>/dev/null
exit "$status"
`;

export function startComponent(
  name: string,
  binary: string,
  args: readonly string[],
  logPath: string,
): Component {
  const log = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', watchdog, 'watchdog', String(process.pid), binary, ...args], {
      detached: true,
      stdio: ['ignore', log, log],
    });
  } finally {
    closeSync(log);
  }
  // The component must not keep the test runner alive; stop() ends it.
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${name} (${binary})`);
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', () => {
      done = true;
      resolve('spawn-error');
    });
  });
  return { name, pid, logPath, exited, hasExited: () => done };
}

function signalGroup(component: Component, signal: NodeJS.Signals): void {
  try {
    // A negative PID addresses the process group the component leads; we
    // created that group, so this reaches only the watchdog and its child.
    process.kill(-component.pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the group leader exited. */
export async function stopComponent(component: Component, graceMs = 10_000): Promise<void> {
  if (component.hasExited()) {
    signalGroup(component, 'SIGKILL'); // reap any straggler in the group
    return;
  }
  signalGroup(component, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
  });
  const result = await Promise.race([component.exited, timedOut]);
  clearTimeout(timer);
  // SIGKILL in both cases: the component itself may still be shutting down
  // after its watchdog returned.
  signalGroup(component, 'SIGKILL');
  if (result === 'timeout') await Promise.race([component.exited, delay(2_000)]);
}

/** For exit handlers, which may not wait: kill the whole group now. */
export function killComponentNow(component: Component): void {
  signalGroup(component, 'SIGKILL');
}

export function logTail(component: Component, lines = 40): string {
  try {
    return readFileSync(component.logPath, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
