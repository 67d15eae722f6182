import { describe, expect, it } from 'vitest';
import {
  arpingArgs,
  arpingSucceeded,
  classifyIpError,
  detectArpingFlavor,
  hasAddress,
  ipAddrAddArgs,
  ipAddrDelArgs,
  ipAddrShowArgs,
  parseAddrShow,
  validateAddress,
} from './commands.js';
import { VipError } from './errors.js';

describe('ip command lines', () => {
  it('adds, deletes and shows with and without a namespace', () => {
    expect(ipAddrAddArgs('ip', {}, '10.0.0.5', 32, 'eth0')).toEqual({
      file: 'ip',
      args: ['addr', 'add', '10.0.0.5/32', 'dev', 'eth0'],
    });
    expect(ipAddrAddArgs('/sbin/ip', { netns: 'a' }, '10.0.0.5', 24, 'eth0', 'eth0:vip')).toEqual({
      file: '/sbin/ip',
      args: ['-n', 'a', 'addr', 'add', '10.0.0.5/24', 'dev', 'eth0', 'label', 'eth0:vip'],
    });
    expect(ipAddrDelArgs('ip', { netns: 'b' }, '10.0.0.5', 32, 'eth1').args).toEqual([
      '-n',
      'b',
      'addr',
      'del',
      '10.0.0.5/32',
      'dev',
      'eth1',
    ]);
    expect(ipAddrShowArgs('ip', {}, 'eth0').args).toEqual(['-j', 'addr', 'show', 'dev', 'eth0']);
  });
});

describe('arping command lines', () => {
  const call = { iface: 'eth0', address: '10.0.0.5', count: 3, intervalMs: 200 } as const;
  it("builds Debian (Habets) arping's unsolicited request and reply forms", () => {
    expect(arpingArgs('arping', 'ip', {}, { ...call, flavor: 'habets', mode: 'request' })).toEqual({
      file: 'arping',
      args: ['-q', '-U', '-i', 'eth0', '-S', '10.0.0.5', '-c', '3', '-W', '0.2', '10.0.0.5'],
    });
    expect(arpingArgs('arping', 'ip', {}, { ...call, flavor: 'habets', mode: 'reply' }).args).toContain('-P');
  });
  it('builds the iputils forms (-U / -A, -I, -s, -i)', () => {
    expect(
      arpingArgs('arping', 'ip', {}, { ...call, flavor: 'iputils', mode: 'reply', count: 5 }).args,
    ).toEqual(['-q', '-A', '-I', 'eth0', '-s', '10.0.0.5', '-c', '5', '-i', '0.2', '10.0.0.5']);
  });
  it('runs under ip netns exec inside a namespace and never sends fewer than one', () => {
    const argv = arpingArgs(
      '/usr/sbin/arping',
      '/sbin/ip',
      { netns: 'h1' },
      {
        ...call,
        count: 0,
        flavor: 'habets',
        mode: 'request',
      },
    );
    expect(argv.file).toBe('/sbin/ip');
    expect(argv.args.slice(0, 4)).toEqual(['netns', 'exec', 'h1', '/usr/sbin/arping']);
    expect(argv.args[argv.args.indexOf('-c') + 1]).toBe('1');
  });
  it('treats exit 1 without stderr as sent for Habets arping (nobody answers a gratuitous ARP)', () => {
    expect(arpingSucceeded('habets', 1, '')).toBe(true);
    expect(arpingSucceeded('habets', 1, 'arping: libnet_init(): socket: Operation not permitted')).toBe(
      false,
    );
    expect(arpingSucceeded('iputils', 1, '')).toBe(false);
    expect(arpingSucceeded('iputils', 0, '')).toBe(true);
  });
  it('detects the flavour from the usage text', () => {
    expect(detectArpingFlavor('ARPing 2.23, by Thomas Habets <thomas@habets.se>')).toBe('habets');
    expect(
      detectArpingFlavor(
        'Usage: arping [-fqbDUAV] [-c count] [-w timeout] [-I device] [-s source] destination\narping from iputils 20221126',
      ),
    ).toBe('iputils');
    expect(detectArpingFlavor('something else')).toBeUndefined();
  });
});

describe('parsing ip -j addr show', () => {
  const sample = JSON.stringify([
    {
      ifindex: 8,
      ifname: 'eth0',
      flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
      address: 'be:b2:05:aa:54:26',
      addr_info: [
        { family: 'inet', local: '10.250.0.2', prefixlen: 24, label: 'eth0' },
        { family: 'inet', local: '10.250.0.100', prefixlen: 32, label: 'eth0' },
        { family: 'inet6', local: 'fe80::bcb2:5ff:feaa:5426', prefixlen: 64 },
      ],
    },
  ]);
  it('extracts MAC, state and addresses', () => {
    const info = parseAddrShow(sample)!;
    expect(info.mac).toBe('be:b2:05:aa:54:26');
    expect(info.up).toBe(true);
    expect(info.addresses).toHaveLength(3);
    expect(hasAddress(info, '10.250.0.100')).toBe(true);
    expect(hasAddress(info, '10.250.0.101')).toBe(false);
  });
  it('returns undefined for an empty list and throws a typed error on garbage', () => {
    expect(parseAddrShow('[]')).toBeUndefined();
    expect(() => parseAddrShow('Device "x" does not exist.')).toThrow(VipError);
    expect(() => parseAddrShow('{}')).toThrow(/not an array/);
  });
});

describe('classifying ip errors', () => {
  it.each([
    ['RTNETLINK answers: File exists', 'exists'],
    ['Error: ipv4: Address already assigned.', 'exists'],
    ['Error: ipv4: Address not found.', 'absent'],
    ['RTNETLINK answers: Cannot assign requested address', 'absent'],
    ['RTNETLINK answers: Operation not permitted', 'permission'],
    ['Cannot find device "eth9"', 'no-interface'],
    ['Device "eth9" does not exist.', 'no-interface'],
    ['Cannot open network namespace "x": No such file or directory', 'no-netns'],
    ['Cannot open network namespace "x": Operation not permitted', 'no-netns'],
    ['something new', 'other'],
  ])('%s -> %s', (stderr, kind) => {
    expect(classifyIpError(stderr)).toBe(kind);
  });
});

describe('address validation', () => {
  it('accepts IPv4 with a sane prefix and refuses the rest with advice', () => {
    expect(() => validateAddress('10.0.0.1', 32)).not.toThrow();
    expect(() => validateAddress('fe80::1', 64)).toThrow(/IPv4 only/);
    expect(() => validateAddress('10.0.0.300', 32)).toThrow(/not an IPv4 address/);
    expect(() => validateAddress('10.0.0.1', 33)).toThrow(/1 to 32/);
  });
});
