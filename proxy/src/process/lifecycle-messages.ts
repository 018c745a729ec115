// The process core's own messages: a worker's life from its settings to its drain.
import { field, messageKind } from './ipc.js';

/** The settings a worker starts with (their type is the assembly's: runWorker<S>). */
export const START = messageKind('start', { settings: field.object<unknown>() });
export const DRAIN = messageKind('drain', { timeoutMs: field.number });
export const LISTENING = messageKind('listening', {});
export const LISTEN_FAILED = messageKind('listen-failed', { code: field.string, message: field.string });
