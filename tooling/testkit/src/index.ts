export { NatsServer, startServer } from './server.js';
export type { ServerOptions } from './server.js';
export { ServerFixture } from './fixture.js';
export type { ServerFixtureOptions } from './fixture.js';
export { Cluster, startCluster } from './cluster.js';
export type { ClusterOptions } from './cluster.js';
export { HubLeaf, startHubLeaf } from './hubleaf.js';
export type { HubLeafOptions } from './hubleaf.js';
export { ChaosProxy } from './proxy.js';
export type { ChaosProxyOptions, ProxiedLink, LinkFilter } from './proxy.js';
export { ChildNode, spawnNode } from './child.js';
export type { SpawnNodeOptions, ChildExit } from './child.js';
export { waitFor, sleep } from './wait.js';
export { assertClosesOnce } from './closable.js';
export { Rng, seededRandom } from './rng.js';
export { simulationSeeds } from './sim.js';
export type { PlantedBug, SimulationSeeds } from './sim.js';
export type { WaitForOptions } from './wait.js';
export { freePort, freePortBlock } from './ports.js';
export { median, percentile } from './stats.js';
export {
  addressesOf,
  arpingUnavailableReason,
  createLan,
  httpGetFrom,
  neighbourOf,
  netnsUnavailableReason,
  reapStaleNamespaces,
  runInNetns,
  spawnInNetns,
  touch,
} from './netns.js';
export type { NetnsNode, TestHost, TestLan } from './netns.js';
export { HTTP_SERVICE_FIXTURE } from './service-fixture.js';
export { SqliteCli, WORKLOAD_SCHEMA, firstDifferentPage, workloadSql } from './sqlite-workload.js';
export { findNatsServer, natsServerVersion } from '@gc/nats-server';
export type { ServerFlavor } from '@gc/nats-server';
export { serverFlavors } from './flavors.js';
export { fastElection } from './timings.js';
export { cleanupAll, liveResources, makeTempDir, runPrefix, TESTKIT_PREFIX } from './cleanup.js';
export { testkitRuntime, dockerStatus, startContainerServer } from './containers.js';
export type { TestkitRuntime, DockerStatus, ContainerServer } from './containers.js';
export { checkLinearizable, registerModel, lockModel, kvModel, fencedRegisterModel } from './lincheck.js';
export type {
  Operation,
  Model,
  LinearizabilityResult,
  RegisterInput,
  RegisterOutput,
  LockInput,
  LockOutput,
  KvInput,
  KvOutput,
  KvKeyState,
  FencedInput,
  FencedOutput,
} from './lincheck.js';
export { checkNonRecords, is, RecordFuzz, recordViolations } from './record-fuzz.js';
export type { FieldCheck, RecordFuzzOptions, ParserFuzz, SchemaFuzz, SafeParser } from './record-fuzz.js';
