// The crypto limit: `openssl speed -evp` for the ciphers the proxy runs, turned into the CPU
// seconds per GB relayed that crypto alone would cost in each mode.
import { execFile } from 'node:child_process';
import { canPin } from './processes.js';

export interface CipherSpeed {
  readonly cipher: string;
  readonly decrypt: boolean;
  /** Bytes per CPU second, 16 KiB blocks. */
  readonly bytesPerSecond: number;
}

export interface CryptoFloor {
  readonly speeds: readonly CipherSpeed[];
  /**
   * Direct mode in fast mode (docs/protocol.md §5.3): client -> DC bytes are decrypted and
   * encrypted again with AES-256-CTR, DC -> client bytes pass untouched. Per GB relayed, both
   * directions counted: 2 CTR passes over half the bytes = 1 / CTR speed.
   */
  readonly directSecondsPerGb: number | undefined;
  /**
   * Middle mode (§6.7): up, CTR decrypt + CBC encrypt; down, CBC decrypt + CTR encrypt; per GB
   * relayed both ways: 1/CTR + (1/CBC-encrypt + 1/CBC-decrypt) / 2.
   */
  readonly middleSecondsPerGb: number | undefined;
  readonly error?: string;
}

/** Parses the last line of `openssl speed -bytes N`: "AES-256-CTR    9501900.80k". */
export function parseSpeed(output: string): number | undefined {
  const lines = output.trim().split('\n').reverse();
  for (const line of lines) {
    const m = /^\S+\s+([\d.]+)k\s*$/.exec(line.trim());
    if (m) return Number(m[1]) * 1000;
  }
  return undefined;
}

function speed(cipher: string, decrypt: boolean, seconds: number, cpus: string | undefined) {
  const args = ['speed', '-seconds', String(seconds), '-bytes', '16384'];
  if (decrypt) args.push('-decrypt');
  args.push('-evp', cipher);
  const argv =
    cpus !== undefined && canPin() ? ['taskset', '-c', cpus, 'openssl', ...args] : ['openssl', ...args];
  return new Promise<CipherSpeed>((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { timeout: (seconds + 10) * 1000 }, (err, stdout) => {
      if (err) return reject(err);
      const bytesPerSecond = parseSpeed(stdout);
      if (bytesPerSecond === undefined)
        return reject(new Error(`cannot read openssl speed output for ${cipher}`));
      resolve({ cipher, decrypt, bytesPerSecond });
    });
  });
}

export async function measureCryptoFloor(seconds: number, cpus: string | undefined): Promise<CryptoFloor> {
  try {
    const ctr = await speed('aes-256-ctr', false, seconds, cpus);
    const cbcEnc = await speed('aes-256-cbc', false, seconds, cpus);
    const cbcDec = await speed('aes-256-cbc', true, seconds, cpus);
    const perGb = (bytesPerSecond: number): number => 1e9 / bytesPerSecond;
    return {
      speeds: [ctr, cbcEnc, cbcDec],
      directSecondsPerGb: perGb(ctr.bytesPerSecond),
      middleSecondsPerGb:
        perGb(ctr.bytesPerSecond) + (perGb(cbcEnc.bytesPerSecond) + perGb(cbcDec.bytesPerSecond)) / 2,
    };
  } catch (err) {
    return {
      speeds: [],
      directSecondsPerGb: undefined,
      middleSecondsPerGb: undefined,
      error: `openssl speed unavailable: ${(err as Error).message}`,
    };
  }
}
