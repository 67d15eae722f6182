// `@gc/election/internal`: for sibling packages' tests and tools, not a stable public API.
export { createElectionOnStore } from './election.js';
export { MemoryLeaseBackend, MemoryLeaseStore } from './memory-store.js';
export { openKvLeaseStore, parseRecord } from './kv-store.js';
export type { KvLeaseStoreOptions } from './kv-store.js';
export type { LeaseEntry, LeaseStore, ProbeResult } from './store.js';
