// Running kubectl (or helm) the way a person would, with a bounded run time.
import { spawn } from 'node:child_process';

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to the command's standard input (for `apply -f -`). */
  readonly input?: string;
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

export class CommandTimeoutError extends Error {
  readonly code = 'ERR_CLUSTER_COMMAND_TIMEOUT';
  constructor(command: string, timeoutMs: number) {
    super(`${command} did not finish within ${timeoutMs}ms`);
    this.name = 'CommandTimeoutError';
  }
}

export class CommandFailedError extends Error {
  readonly code = 'ERR_CLUSTER_COMMAND_FAILED';
  readonly result: CommandResult;
  constructor(command: string, result: CommandResult) {
    super(`${command} exited with ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'CommandFailedError';
    this.result = result;
  }
}

/** Runs a command to completion; a non-zero exit is a result, not an error. */
export function runCommand(
  binary: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const display = [binary.split('/').pop(), ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new CommandTimeoutError(display, timeoutMs));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
    child.stdin.on('error', () => {
      // The command may exit without reading its input; its exit code tells.
    });
    child.stdin.end(options.input);
  });
}

/** Like runCommand, but a non-zero exit throws CommandFailedError. */
export async function runCommandOk(
  binary: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<string> {
  const result = await runCommand(binary, args, options);
  if (result.code !== 0) {
    throw new CommandFailedError([binary.split('/').pop(), ...args].join(' '), result);
  }
  return result.stdout;
}
