// Kubernetes Events for what a user should see in `kubectl describe mtp` (client-node has no
// recorder). Repeats of the same event within ten minutes bump the count of the existing Event
// instead of creating new ones, like client-go's correlator; messages are redacted.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../schedule/clock.js';
import type { KubeClient } from './kube-client.js';
import { redact } from './redact.js';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid?: string; resourceVersion?: string };
}

export type EventType = 'Normal' | 'Warning';

const AGGREGATE_MS = 10 * 60_000;
const MAX_REMEMBERED = 4096;

interface Seen {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
  at: number;
}

export interface EventSink {
  record(obj: InvolvedObject, type: EventType, reason: string, message: string): Promise<void>;
}

export class EventRecorder implements EventSink {
  readonly #seen = new Map<string, Seen>();

  constructor(
    private readonly client: KubeClient,
    private readonly options: {
      component: string;
      instance: string;
      clock: Clock;
      onError?: (err: unknown) => void;
    },
  ) {}

  /** Never throws: an event that cannot be written is reported to onError and dropped. */
  async record(obj: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    const text = redact(message).slice(0, 1024);
    const now = this.options.clock.now();
    const key = [obj.metadata.namespace, obj.metadata.uid ?? obj.metadata.name, type, reason, text].join(
      '\0',
    );
    const ts = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    try {
      const seen = this.#seen.get(key);
      if (seen && now - seen.at < AGGREGATE_MS) {
        seen.count++;
        seen.at = now;
        await this.client.mergePatch(
          { apiVersion: 'v1', kind: 'Event', namespace: seen.namespace, name: seen.name },
          { count: seen.count, lastTimestamp: ts },
        );
        return;
      }
      const name = `${obj.metadata.name}.${now.toString(16)}${randomBytes(2).toString('hex')}`;
      await this.client.create({
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: obj.metadata.namespace },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: obj.metadata.name,
          namespace: obj.metadata.namespace,
          uid: obj.metadata.uid,
          resourceVersion: obj.metadata.resourceVersion,
        },
        type,
        reason,
        message: text,
        count: 1,
        firstTimestamp: ts,
        lastTimestamp: ts,
        source: { component: this.options.component },
        reportingComponent: this.options.component,
        reportingInstance: this.options.instance,
      });
      if (this.#seen.size >= MAX_REMEMBERED) {
        const oldest = this.#seen.keys().next().value;
        if (oldest !== undefined) this.#seen.delete(oldest);
      }
      this.#seen.set(key, { name, namespace: obj.metadata.namespace, count: 1, firstTimestamp: ts, at: now });
    } catch (err) {
      this.#seen.delete(key);
      this.options.onError?.(err);
    }
  }
}
