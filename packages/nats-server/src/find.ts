import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Which server build: the default (newest provisioned) or the 2.10.x compatibility build. */
export type ServerFlavor = 'default' | '2.10';

/** The gc checkout this package runs from (the folder with `pnpm-workspace.yaml`), if any. */
export function workspaceRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    dir = dirname(dir);
  }
  return undefined;
}

function onPath(name: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':')) {
    const p = d && join(d, name);
    if (p && existsSync(p)) return p;
  }
  return undefined;
}

/**
 * The nats-server binary to use: `NATS_SERVER_BIN` (or `NATS_SERVER_BIN_2_10`), else the copy
 * `scripts/provision-nats.sh` put in `.tools/bin`, else `nats-server` on PATH (default flavor only).
 * Undefined when there is none.
 */
export function findNatsServer(flavor: ServerFlavor = 'default'): string | undefined {
  const root = workspaceRoot();
  const envBin = flavor === '2.10' ? process.env.NATS_SERVER_BIN_2_10 : process.env.NATS_SERVER_BIN;
  if (envBin) return envBin;
  const local =
    root && join(root, flavor === '2.10' ? '.tools/bin/nats-server-2.10' : '.tools/bin/nats-server');
  if (local && existsSync(local)) return local;
  return flavor === 'default' ? onPath('nats-server') : undefined;
}

/** Like {@link findNatsServer} but throws a message that says how to get one. */
export function requireNatsServer(flavor: ServerFlavor = 'default'): string {
  const bin = findNatsServer(flavor);
  if (!bin) {
    const env = flavor === '2.10' ? 'NATS_SERVER_BIN_2_10' : 'NATS_SERVER_BIN';
    throw new Error(
      `no nats-server${flavor === '2.10' ? ' 2.10.x' : ''} found: run "bash scripts/provision-nats.sh" in the gc checkout, install nats-server >= 2.10, or set ${env}`,
    );
  }
  return bin;
}

const versions = new Map<string, string>();

/** The version a nats-server binary reports, for example `2.15.1`. */
export function natsServerVersion(bin: string): string {
  let v = versions.get(bin);
  if (!v) {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8' });
    v = /v(\d+\.\d+\.\d+)/.exec(out)?.[1];
    if (!v) throw new Error(`${bin} --version printed no version: ${out.trim()}`);
    versions.set(bin, v);
  }
  return v;
}
