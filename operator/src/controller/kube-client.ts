// A small JSON client for the Kubernetes REST API: plain objects in and out, status codes kept,
// server-side apply as a first-class verb. Authentication (client certificates, bearer tokens,
// in-cluster service-account tokens, exec plugins) comes from client-node's KubeConfig.
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { uid: string; kind: string; name: string; controller?: boolean }[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  [key: string]: unknown;
}

export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string };
  items: T[];
}

/** An error answer of the API server, with its HTTP status and Status reason. */
export class KubeApiError extends Error {
  readonly code = 'ERR_KUBE_API';
  readonly statusCode: number;
  readonly reason: string;
  readonly method: string;
  readonly path: string;
  constructor(method: string, path: string, statusCode: number, reason: string, message: string) {
    super(`${method} ${path}: ${statusCode} ${reason}: ${message}`);
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
    this.reason = reason;
    this.method = method;
    this.path = path;
  }
}

/** A request given up before an answer: its deadline passed or its scope (a leadership term) ended. */
export class KubeRequestAbortedError extends Error {
  readonly code = 'ERR_KUBE_ABORTED';
  constructor(method: string, path: string, why: string) {
    super(`${method} ${path}: ${why}`);
    this.name = 'KubeRequestAbortedError';
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.statusCode === 404;
export const isConflict = (err: unknown): boolean => err instanceof KubeApiError && err.statusCode === 409;

/** Where each kind we touch lives in the API. */
const RESOURCES: Record<string, { plural: string; namespaced: boolean }> = {
  'v1/Secret': { plural: 'secrets', namespaced: true },
  'v1/PersistentVolumeClaim': { plural: 'persistentvolumeclaims', namespaced: true },
  'v1/Service': { plural: 'services', namespaced: true },
  'v1/Event': { plural: 'events', namespaced: true },
  'v1/Namespace': { plural: 'namespaces', namespaced: false },
  'apps/v1/Deployment': { plural: 'deployments', namespaced: true },
  'apps/v1/ReplicaSet': { plural: 'replicasets', namespaced: true },
  'policy/v1/PodDisruptionBudget': { plural: 'poddisruptionbudgets', namespaced: true },
  'coordination.k8s.io/v1/Lease': { plural: 'leases', namespaced: true },
  'monitoring.coreos.com/v1/ServiceMonitor': { plural: 'servicemonitors', namespaced: true },
  'mtkube.dev/v1alpha1/MTProxy': { plural: 'mtproxies', namespaced: true },
};

export interface ResourceRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace?: string | undefined;
  readonly name?: string | undefined;
  readonly subresource?: 'status' | 'scale';
}

/** /api/v1/namespaces/ns/secrets/name, /apis/apps/v1/deployments, ... */
export function resourcePath(ref: ResourceRef): string {
  const info = RESOURCES[`${ref.apiVersion}/${ref.kind}`];
  if (!info) throw new Error(`unknown resource ${ref.apiVersion} ${ref.kind}`);
  let path = ref.apiVersion.includes('/') ? `/apis/${ref.apiVersion}` : `/api/${ref.apiVersion}`;
  if (info.namespaced && ref.namespace) path += `/namespaces/${encodeURIComponent(ref.namespace)}`;
  path += `/${info.plural}`;
  if (ref.name) path += `/${encodeURIComponent(ref.name)}`;
  if (ref.subresource) path += `/${ref.subresource}`;
  return path;
}

function refOf(obj: KubeObject, subresource?: 'status'): ResourceRef {
  if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) {
    throw new Error('an object needs apiVersion, kind and metadata.name');
  }
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    namespace: obj.metadata.namespace,
    name: obj.metadata.name,
    ...(subresource ? { subresource } : {}),
  };
}

export interface RequestOptionsExtra {
  readonly query?: Record<string, string | undefined>;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly timeoutMs?: number;
  /** Gives the request up (and closes its connection) when aborted, e.g. AbortSignal.timeout(ms). */
  readonly signal?: AbortSignal;
}

export interface KubeClientOptions {
  /** Every request of this client is given up when it aborts (see scoped()). */
  readonly signal?: AbortSignal;
  /** Shared connection pool (scoped clients use their parent's). */
  readonly agent?: Agent;
}

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly fieldManager: string;
  readonly #server: URL;
  readonly #agent: Agent;
  readonly #ownsAgent: boolean;
  readonly #signal: AbortSignal | undefined;

  constructor(kubeConfig: KubeConfig, fieldManager: string, options: KubeClientOptions = {}) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.kubeConfig = kubeConfig;
    this.fieldManager = fieldManager;
    this.#server = new URL(cluster.server);
    this.#ownsAgent = options.agent === undefined;
    this.#agent = options.agent ?? new Agent({ keepAlive: true, maxSockets: 16 });
    this.#signal = options.signal;
  }

  /**
   * The same client whose requests all end when `signal` aborts: those in flight are cut off and
   * new ones refused at once. A leader's controller uses one per term, so nothing it started still
   * writes once it has stepped down.
   */
  scoped(signal: AbortSignal): KubeClient {
    const both = this.#signal ? AbortSignal.any([this.#signal, signal]) : signal;
    return new KubeClient(this.kubeConfig, this.fieldManager, { signal: both, agent: this.#agent });
  }

  async request<T>(method: string, path: string, extra: RequestOptionsExtra = {}): Promise<T> {
    const url = new URL(this.#server.pathname.replace(/\/$/, '') + path, this.#server);
    for (const [k, v] of Object.entries(extra.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const opts: RequestOptions = { headers: {} };
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const payload = extra.body === undefined ? undefined : JSON.stringify(extra.body);
    const headers: Record<string, string | number> = {
      ...(opts.headers as Record<string, string>),
      accept: 'application/json',
    };
    if (payload !== undefined) {
      headers['content-type'] = extra.contentType ?? 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const isHttps = url.protocol === 'https:';
    const send = isHttps ? httpsRequest : httpRequest;
    const timeoutMs = extra.timeoutMs ?? 30_000;
    const signals = [this.#signal, extra.signal].filter((x): x is AbortSignal => x !== undefined);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    const aborted = () =>
      new KubeRequestAbortedError(
        method,
        url.pathname,
        signal?.reason instanceof Error && signal.reason.name === 'TimeoutError'
          ? 'deadline exceeded'
          : 'given up (scope ended)',
      );
    if (signal?.aborted) throw aborted();
    return new Promise<T>((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          headers,
          ...(isHttps
            ? {
                agent: this.#agent,
                ca: opts.ca,
                cert: opts.cert,
                key: opts.key,
                pfx: opts.pfx,
                passphrase: opts.passphrase,
                servername: opts.servername,
                ...(opts.rejectUnauthorized !== undefined
                  ? { rejectUnauthorized: opts.rejectUnauthorized }
                  : {}),
              }
            : {}),
          timeout: timeoutMs,
          ...(signal ? { signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(signal?.aborted ? aborted() : err));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = undefined;
            }
            if (status >= 200 && status < 300) {
              resolve(parsed as T);
              return;
            }
            const st = (parsed ?? {}) as { reason?: string; message?: string };
            reject(
              new KubeApiError(
                method,
                url.pathname,
                status,
                st.reason ?? 'Unknown',
                st.message ?? text.slice(0, 300),
              ),
            );
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${url.pathname} timed out after ${timeoutMs}ms`)),
      );
      req.on('error', (err) => reject(signal?.aborted ? aborted() : err));
      req.end(payload);
    });
  }

  get<T extends KubeObject>(ref: ResourceRef): Promise<T> {
    return this.request<T>('GET', resourcePath(ref));
  }

  /** GET, with undefined for 404. */
  async find<T extends KubeObject>(ref: ResourceRef): Promise<T | undefined> {
    try {
      return await this.get<T>(ref);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  list<T extends KubeObject>(ref: ResourceRef, labelSelector?: string): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', resourcePath(ref), { query: { labelSelector } });
  }

  create<T extends KubeObject>(obj: T): Promise<T> {
    const ref = refOf(obj);
    return this.request<T>('POST', resourcePath({ ...ref, name: undefined }), {
      body: obj,
      query: { fieldManager: this.fieldManager },
    });
  }

  /** PUT with the object's resourceVersion: fails with 409 if someone wrote in between. */
  replace<T extends KubeObject>(obj: T): Promise<T> {
    return this.request<T>('PUT', resourcePath(refOf(obj)), {
      body: obj,
      query: { fieldManager: this.fieldManager },
    });
  }

  /**
   * Server-side apply: the object states every field this manager owns; fields it owned before and
   * leaves out are removed, fields of other managers stay. force takes over conflicting fields.
   */
  apply<T extends KubeObject>(
    obj: KubeObject,
    options: { status?: boolean; force?: boolean } = {},
  ): Promise<T> {
    return this.request<T>('PATCH', resourcePath(refOf(obj, options.status ? 'status' : undefined)), {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: this.fieldManager, force: String(options.force ?? true) },
    });
  }

  mergePatch<T extends KubeObject>(ref: ResourceRef, patch: unknown): Promise<T> {
    return this.request<T>('PATCH', resourcePath(ref), {
      body: patch,
      contentType: 'application/merge-patch+json',
      query: { fieldManager: this.fieldManager },
    });
  }

  /** DELETE; true if something was deleted, false if it was already gone. */
  async delete(
    ref: ResourceRef,
    propagationPolicy: 'Background' | 'Foreground' = 'Background',
    preconditions?: { uid?: string; resourceVersion?: string },
  ): Promise<boolean> {
    try {
      await this.request('DELETE', resourcePath(ref), {
        body: {
          kind: 'DeleteOptions',
          apiVersion: 'v1',
          propagationPolicy,
          ...(preconditions ? { preconditions } : {}),
        },
      });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Whether the API server serves a group/version (e.g. monitoring.coreos.com/v1). */
  async servesApi(apiVersion: string, kind?: string): Promise<boolean> {
    try {
      const res = await this.request<{ resources?: { kind: string }[] }>(
        'GET',
        apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`,
      );
      return kind === undefined || (res.resources ?? []).some((r) => r.kind === kind);
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  close(): void {
    if (this.#ownsAgent) this.#agent.destroy();
  }
}
