/** What a nats-server config file written by {@link renderServerConfig} contains. */
export interface ServerConfig {
  /** `server_name`. */
  name: string;
  /** Client port on `host`. */
  port: number;
  /** Listen address. Default `127.0.0.1`. */
  host?: string;
  /** Monitoring port (`/varz`, `/jsz`, `/healthz`, ...). Default none. */
  httpPort?: number;
  /** JetStream store dir; JetStream is off when absent. */
  storeDir?: string;
  /** JetStream domain (hub/leaf setups). */
  domain?: string;
  /** `max_payload` in bytes. Default the server's (1 MiB). */
  maxPayload?: number;
  /** Cluster membership: name, own route port, routes to others, optional advertised route address. */
  cluster?: { name: string; port: number; routes: string[]; advertise?: string };
  /** Accept leaf node connections on this port. */
  leafListenPort?: number;
  /** Connect as a leaf node to these URLs (`nats-leaf://host:port`). */
  leafRemotes?: string[];
  /** Extra configuration appended verbatim. */
  extra?: string;
}

const q = (s: string) => JSON.stringify(s);

/** Renders a nats-server configuration file. */
export function renderServerConfig(c: ServerConfig): string {
  const host = c.host ?? '127.0.0.1';
  const lines = [`server_name: ${q(c.name)}`, `listen: ${q(`${host}:${c.port}`)}`];
  if (c.httpPort) lines.push(`http: ${q(`${host}:${c.httpPort}`)}`);
  if (c.maxPayload) lines.push(`max_payload: ${c.maxPayload}`);
  if (c.storeDir) {
    lines.push(
      'jetstream {',
      `  store_dir: ${q(c.storeDir)}`,
      '  max_memory_store: 256MB',
      '  max_file_store: 8GB',
      ...(c.domain ? [`  domain: ${q(c.domain)}`] : []),
      '}',
    );
  }
  if (c.cluster) {
    lines.push(
      'cluster {',
      `  name: ${q(c.cluster.name)}`,
      `  listen: ${q(`${host}:${c.cluster.port}`)}`,
      ...(c.cluster.advertise ? [`  advertise: ${q(c.cluster.advertise)}`] : []),
      `  routes: [${c.cluster.routes.map(q).join(', ')}]`,
      '  connect_retries: 120',
      '}',
    );
  }
  if (c.leafListenPort || c.leafRemotes) {
    lines.push('leafnodes {');
    if (c.leafListenPort) lines.push(`  listen: ${q(`${host}:${c.leafListenPort}`)}`);
    if (c.leafRemotes)
      lines.push(
        '  reconnect: "1s"',
        `  remotes: [${c.leafRemotes.map((u) => `{ url: ${q(u)} }`).join(', ')}]`,
      );
    lines.push('}');
  }
  if (c.extra) lines.push(c.extra);
  return `${lines.join('\n')}\n`;
}
