// Structured JSON logs (winston) on stdout; every message and every string in every field, however
// deeply nested, passes through redact().

import type { Writable } from 'node:stream';
import winston from 'winston';
import { redactDeep } from './controller/redact.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface Logger {
  error(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const redactFormat = winston.format((info) => {
  const fields = info as Record<string, unknown>;
  for (const [k, v] of Object.entries(fields)) fields[k] = redactDeep(v);
  return info;
});

export function createLogger(
  level: LogLevel = 'info',
  options: { silent?: boolean; stream?: Writable } = {},
): Logger {
  const base = winston.createLogger({
    level,
    silent: options.silent ?? false,
    format: winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component: 'mtkube-operator' },
    transports: [
      options.stream
        ? new winston.transports.Stream({ stream: options.stream })
        : new winston.transports.Console(),
    ],
  });
  return wrap(base);
}

function wrap(w: winston.Logger): Logger {
  // winston formats (redacts every field, serializes) before its transports drop a level that is
  // off: asking first spares that work for the debug line of every reconcile.
  const at =
    (level: LogLevel) =>
    (m: string, f?: Record<string, unknown>): void => {
      if (w.isLevelEnabled(level)) w[level](m, f);
    };
  return {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: (fields) => wrap(w.child(fields)),
  };
}

/** A logger that drops everything (tests that do not look at logs). */
export const silentLogger: Logger = {
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  child: () => silentLogger,
};
