// Failed `ip` and `arping` runs turned into typed VIP errors that say what to do next.
import { classifyIpError, type Argv } from './commands.js';
import { VipCommandError, VipErrorCode } from './errors.js';
import type { ExecResult } from './exec.js';

export const IP_HINT = 'install iproute2 (`apt-get install -y iproute2`) or set commands.ip to its path';
export const ARPING_HINT =
  "install Debian's arping (`apt-get install -y arping`) or iputils-arping, set commands.arping to its path, or turn announcements off with arp.enabled=false";

/** The error of a failed `ip` run (`what` it was doing), with the fix for the usual causes. */
export function ipError(argv: Argv, r: ExecResult, what: string, netns: string | undefined): VipCommandError {
  const stderr = r.stderr.trim();
  const command = `${argv.file} ${argv.args.join(' ')}`;
  const detail = { command, exitCode: r.exitCode, stderr };
  const where = netns ? ` in network namespace ${netns}` : '';
  switch (classifyIpError(stderr)) {
    case 'permission':
      return new VipCommandError(
        VipErrorCode.PermissionDenied,
        `${what} failed${where}: ${stderr}. Changing addresses needs CAP_NET_ADMIN: run gc as root or grant it (setcap cap_net_admin+ep, or AmbientCapabilities=CAP_NET_ADMIN in the systemd unit)`,
        detail,
      );
    case 'no-interface':
      return new VipCommandError(
        VipErrorCode.NoInterface,
        `${what} failed${where}: ${stderr}. Check vip.interface against \`ip link\` on this host`,
        detail,
      );
    case 'no-netns':
      return new VipCommandError(
        VipErrorCode.NoNetns,
        `${what} failed: ${stderr}. Create the namespace (\`ip netns add ${netns ?? 'NAME'}\`) or remove vip.netns`,
        detail,
      );
    default:
      return new VipCommandError(
        VipErrorCode.CommandFailed,
        `${what} failed${where} (exit ${r.exitCode}): ${stderr}`,
        detail,
      );
  }
}
