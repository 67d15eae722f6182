// `@gc/election/internal`: for sibling packages' tests and tools, not a stable public API.
export { createElectionOnStore } from './election.js';
export { MemoryLeaseBackend, MemoryLeaseStore } from './memory-store.js';
export { openKvLeaseStore, parseRecord } from './store.js';
export type { LeaseEntry, LeaseStore, ProbeResult, KvLeaseStoreOptions } from './store.js';
