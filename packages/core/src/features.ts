import type { NatsConnection } from '@nats-io/nats-core';
import { ClosedError, FeatureUnsupportedError } from './errors.js';

/** The oldest nats-server gc works with. */
export const MIN_SERVER_VERSION = '2.10.0';

/**
 * Server features gc may use, with the first nats-server version that has each.
 * - `per-key-ttl`: per-message TTL (`Nats-TTL`) and KV per-key TTL (2.11). 2.9 accepts the header
 *   and silently ignores it, which is why gc never trusts it without this check.
 * - `kv-limit-markers`: KV delete/purge/expiry markers (`subject_delete_marker_ttl`, 2.11).
 * - `atomic-batch`: atomic batch publish (2.12).
 * - `msg-schedules`: scheduled messages (2.12).
 */
export const SERVER_FEATURES = {
  'per-key-ttl': '2.11.0',
  'kv-limit-markers': '2.11.0',
  'atomic-batch': '2.12.0',
  'msg-schedules': '2.12.0',
} as const;
/** A feature name from {@link SERVER_FEATURES}. */
export type ServerFeature = keyof typeof SERVER_FEATURES;

/** A parsed `major.minor.patch` version; pre-release suffixes are ignored. */
export interface SemVer {
  major: number;
  minor: number;
  patch: number;
}

/** Parses `2.10.27`, `v2.11.0-beta.1`; throws RangeError on anything else. */
export function parseVersion(v: string): SemVer {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v.trim());
  if (!m) throw new RangeError(`not a version: ${JSON.stringify(v)}`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

/** Negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  return x.major - y.major || x.minor - y.minor || x.patch - y.patch;
}

/** The version of the server the connection is currently attached to. */
export function serverVersion(nc: NatsConnection): string {
  const v = nc.info?.version;
  if (!v) throw new ClosedError('the NATS connection (no server info)');
  return v;
}

/**
 * True when the connected server has `feature`. In a cluster of mixed versions this is the version of
 * the server this connection is attached to; run the same version everywhere.
 */
export function supports(nc: NatsConnection, feature: ServerFeature): boolean {
  return versionSupports(serverVersion(nc), feature);
}

/** True when nats-server `version` has `feature`. */
export function versionSupports(version: string, feature: ServerFeature): boolean {
  return compareVersions(version, SERVER_FEATURES[feature]) >= 0;
}

/** Throws {@link FeatureUnsupportedError} unless the connected server has `feature`. */
export function requireFeature(nc: NatsConnection, feature: ServerFeature): void {
  const v = serverVersion(nc);
  if (!versionSupports(v, feature)) throw new FeatureUnsupportedError(feature, v, SERVER_FEATURES[feature]);
}
