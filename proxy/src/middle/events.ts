// What happens on the middle-proxy path, told to whoever counts it. The names follow the official
// /stats keys (§7.4) so the counters map one to one: tot_forwarded_queries, dropped_queries,
// tot_forwarded_responses, dropped_responses, tot_forwarded_simple_acks, dropped_simple_acks,
// ext_connections(_created), connections_failed_flood.

export interface MiddleObserver {
  /** A client packet went out as RPC_PROXY_REQ. */
  forwardedQuery(): void;
  /** A client packet went nowhere: no middle-end connection was ready, or it failed §3.5's checks. */
  droppedQuery(): void;
  /** RPC_PROXY_ANS written to its client. */
  forwardedResponse(): void;
  /** RPC_PROXY_ANS for a client that is gone (answered with RPC_CLOSE_CONN). */
  droppedResponse(): void;
  forwardedSimpleAck(): void;
  droppedSimpleAck(): void;
  /** A client was bound to a middle-end connection (ext_connections + 1, ext_connections_created + 1). */
  clientBound(): void;
  /** ...and released from it (ext_connections - 1). */
  clientReleased(): void;
  /** A client was closed because it did not read its answers and its backlog passed the cap. */
  clientFlooded(): void;
}

export const NULL_MIDDLE_OBSERVER: MiddleObserver = {
  forwardedQuery() {},
  droppedQuery() {},
  forwardedResponse() {},
  droppedResponse() {},
  forwardedSimpleAck() {},
  droppedSimpleAck() {},
  clientBound() {},
  clientReleased() {},
  clientFlooded() {},
};
