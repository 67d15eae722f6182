// Baseline for the backend-failover bench: the same work as an activation (add the VIP, send the
// same gratuitous ARPs, start the service, poll it until it answers) done by hand, without gc.
// Runs inside a network namespace. IPC in: {cmd:'run', vip, port, arpCount} / {cmd:'clean'}.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { HTTP_SERVICE_FIXTURE } from '@gc/testkit';

const service = HTTP_SERVICE_FIXTURE;
let child: ChildProcess | undefined;
let vipCidr = '';

function ok(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 500 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) < 400);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

process.on('message', (m: { cmd: string; vip: string; port: number; arpCount: number }) => {
  void (async () => {
    if (m.cmd === 'run') {
      const t0 = performance.now();
      vipCidr = `${m.vip}/32`;
      spawnSync('ip', ['addr', 'add', vipCidr, 'dev', 'eth0']);
      spawnSync('arping', [
        '-q',
        '-U',
        '-i',
        'eth0',
        '-S',
        m.vip,
        '-c',
        String(m.arpCount),
        '-W',
        '0.05',
        m.vip,
      ]);
      child = spawn(process.execPath, [service], {
        env: { ...process.env, PORT: String(m.port), HOST: '0.0.0.0' },
        detached: true,
        stdio: 'ignore',
      });
      while (!(await ok(m.port))) await new Promise((r) => setTimeout(r, 10));
      process.send?.({ type: 'done', ms: performance.now() - t0 });
    }
    if (m.cmd === 'clean') {
      if (child?.pid) process.kill(-child.pid, 'SIGKILL');
      spawnSync('ip', ['addr', 'del', vipCidr, 'dev', 'eth0']);
      process.send?.({ type: 'cleaned' });
    }
  })();
});
process.send?.({ type: 'ready' });
