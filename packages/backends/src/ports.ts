import { createServer } from 'node:net';
import { PortInUseError } from './errors.js';
import { findListenerPid } from './procfs.js';

/**
 * Throws {@link PortInUseError} when `port` on `host` cannot be bound (someone else listens
 * there). Other bind errors (for example an address that is not on this host) are not a
 * conflict and pass.
 */
export async function assertPortFree(host: string, port: number, what: string): Promise<void> {
  const bindHost = host === 'localhost' ? '127.0.0.1' : host;
  const inUse = await new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE'));
    srv.listen({ host: bindHost, port, exclusive: true }, () => srv.close(() => resolve(false)));
  });
  if (inUse) throw new PortInUseError(bindHost, port, what, findListenerPid(port));
}
