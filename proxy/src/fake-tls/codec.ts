// Fake TLS (`ee` secrets, docs/protocol.md §4), what the server side needs in one import:
//   detectClientHello   bytes received so far -> need more / not TLS / a complete ClientHello
//   validateClientHello the hello + secrets, domains, clock -> accepted (secret, keys to echo,
//                       replay key) or refused with a reason; the caller masks on refusal
//   buildServerHello    the three-record answer, one write
//   TlsRecordReader     client records -> the obfuscated2 byte stream
//   wrapRecords         proxy bytes -> application-data records
// The client side (tests, benchmark) is in client.ts.
export * from './client-hello.js';
export * from './records.js';
export * from './server-hello.js';
