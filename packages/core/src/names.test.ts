import { describe, expect, it } from 'vitest';
import { InvalidNameError } from './errors.js';
import {
  resourceNames,
  subjectTail,
  validateAppName,
  validateNodeId,
  validatePlatformName,
} from './names.js';

describe('resource names', () => {
  it('follows the public naming contract', () => {
    const n = resourceNames('prod');
    expect(n.membership).toBe('prod_membership');
    expect(n.services).toBe('prod_services');
    expect(n.platformLocks).toBe('prod_platform_locks');
    expect(n.auditStream).toBe('prod_audit');
    expect(n.placement).toBe('prod_placement');
    expect(n.placementElection).toBe('prod_placement_election');
    expect(n.audit('leader.acquired')).toBe('prod._.audit.leader.acquired');
    expect(n.events('deploy.done')).toBe('prod.events.deploy.done');
    const a = n.app('orders');
    expect(a.kv).toBe('prod_orders');
    expect(a.locks).toBe('prod_orders_locks');
    expect(a.election).toBe('prod_orders_election');
    expect(a.walStream).toBe('prod_orders_wal');
    expect(a.snapshots).toBe('prod_orders_snapshots');
    expect(a.rpc('get')).toBe('prod.orders.rpc.get');
    expect(a.events('created')).toBe('prod.orders.events.created');
  });

  it.each([
    ['', /must not be empty/],
    ['Prod', /lowercase/],
    ['my_platform', /no "_"/],
    ['a.b', /no "_" or "."/],
    ['1abc', /starting with a letter/],
    ['abc-', /must not end with/],
    ['x'.repeat(33), /at most 32/],
  ])('refuses platform name %j', (name, msg) => {
    expect(() => validatePlatformName(name)).toThrow(InvalidNameError);
    expect(() => validatePlatformName(name)).toThrow(msg);
  });

  it('refuses reserved and malformed app names with the reason', () => {
    expect(() => validateAppName('membership')).toThrow(/reserved/);
    expect(() => validateAppName('platform')).toThrow(/reserved/);
    expect(() => validateAppName('orders_v2')).toThrow(/invalid app name "orders_v2"/);
    expect(() => validateAppName(42)).toThrow(/must be a string/);
    expect(validateAppName('orders-v2')).toBe('orders-v2');
  });

  it('no two (platform, app) pairs map to the same bucket', () => {
    // "_" is refused in both, so `{platform}_{app}` is unambiguous.
    expect(() => resourceNames('a').app('b_c')).toThrow(InvalidNameError);
    expect(() => resourceNames('a_b')).toThrow(InvalidNameError);
  });

  it('validates node ids and subject tails', () => {
    expect(validateNodeId('node-1_a')).toBe('node-1_a');
    expect(() => validateNodeId('node.1')).toThrow(/node id/);
    expect(() => validateNodeId('')).toThrow(/empty/);
    expect(subjectTail('topic', 'a.*.>')).toBe('a.*.>');
    expect(() => subjectTail('topic', 'a.>.b')).toThrow(/token/);
    expect(() => subjectTail('topic', 'a..b')).toThrow(/token/);
    expect(() => resourceNames('p').app('x').rpc('bad.method')).toThrow(/method/);
  });
});
