import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Fields of `/proc/PID/stat` that backends use. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
}

/** Parses one `/proc/PID/stat` line (the command name may contain spaces and parentheses). */
export function parseProcStat(line: string): ProcStat | undefined {
  const open = line.indexOf('(');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = line.slice(close + 2).split(' ');
  const pid = Number(line.slice(0, open).trim());
  if (!Number.isInteger(pid) || rest.length < 3) return undefined;
  return {
    pid,
    comm: line.slice(open + 1, close),
    state: rest[0]!,
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
  };
}

/**
 * Live (non-zombie) processes whose process group is `pgid`, read from /proc. Empty means every
 * process the backend started (and everything they forked without leaving the group) is gone.
 */
export function processGroupMembers(pgid: number): ProcStat[] {
  const out: ProcStat[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const d of entries) {
    if (!/^\d+$/.test(d)) continue;
    let line: string;
    try {
      line = readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      // The process exited between the listing and the read: skip it.
      continue;
    }
    const st = parseProcStat(line);
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') out.push(st);
  }
  return out;
}

/** A socket listening on a TCP port, from `/proc/net/tcp{,6}`. */
export interface ListeningSocket {
  port: number;
  inode: number;
}

/** Parses `/proc/net/tcp` or `/proc/net/tcp6` and returns the listening sockets (state 0A). */
export function parseProcNetTcp(text: string): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== '0A') continue;
    const port = parseInt(f[1]!.split(':')[1] ?? '', 16);
    const inode = Number(f[9]);
    if (Number.isFinite(port) && inode > 0) out.push({ port, inode });
  }
  return out;
}

/** Best effort: the PID of a process listening on `port`, from /proc (undefined when not found or not allowed). */
export function findListenerPid(port: number): number | undefined {
  const inodes = new Set<number>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      for (const s of parseProcNetTcp(readFileSync(f, 'utf8'))) if (s.port === port) inodes.add(s.inode);
    } catch {
      // no IPv6 table on this host
    }
  }
  if (!inodes.size) return undefined;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${d}/fd`);
    } catch {
      // The process exited (or is not ours to read) between the listing and the read: skip it.
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${d}/fd/${fd}`));
        if (m && inodes.has(Number(m[1]))) return Number(d);
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return undefined;
}
