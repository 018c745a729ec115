// Structured logs: JSON lines when stdout is not a terminal (Kubernetes collects them), readable
// lines on a terminal. One line per lifecycle event; never per packet, never a secret.
import winston from 'winston';

export type Logger = winston.Logger;

/** LOG_LEVEL. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export function createLogger(level: LogLevel, opts: { json?: boolean; component?: string } = {}): Logger {
  const json = opts.json ?? !process.stdout.isTTY;
  const format = json
    ? winston.format.combine(winston.format.timestamp(), winston.format.json())
    : winston.format.combine(
        winston.format.timestamp({ format: 'HH:mm:ss' }),
        winston.format.printf(({ timestamp, level: lvl, message, ...meta }) => {
          const extra = Object.keys(meta).length > 0 ? ` ${JSON.stringify(meta)}` : '';
          return `${String(timestamp)} ${lvl.padEnd(5)} ${String(message)}${extra}`;
        }),
      );
  return winston.createLogger({
    level,
    format,
    defaultMeta: opts.component ? { component: opts.component } : undefined,
    transports: [new winston.transports.Console({ stderrLevels: [] })],
  });
}
