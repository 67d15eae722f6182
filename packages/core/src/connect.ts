import { readFile } from 'node:fs/promises';
import {
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type ConnectionOptions,
  type NatsConnection,
} from '@nats-io/nats-core';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { ConnectError, ErrorCode, GcError, JetStreamUnavailableError, ServerTooOldError } from './errors.js';
import { isAuthorizationError, isNoResponders, jsApiCode, JsApiCode } from './nats-errors.js';
import { compareVersions, MIN_SERVER_VERSION } from './features.js';

/** How to authenticate. Give at most one of `credsFile`/`creds`, `token`, `user`+`pass`, `nkeySeed`. */
export interface Credentials {
  /** Path of a `.creds` file (JWT + nkey seed). */
  credsFile?: string;
  /** Contents of a `.creds` file. */
  creds?: string;
  /** Token authentication. */
  token?: string;
  /** User name for user/password authentication. */
  user?: string;
  /** Password for user/password authentication. */
  pass?: string;
  /** An nkey seed (`SU...`) for nkey authentication. */
  nkeySeed?: string;
}

/** TLS settings. Paths are read by the NATS client. */
export interface TlsSettings {
  /** CA certificate file to verify the server. */
  caFile?: string;
  /** Client certificate file, for mutual TLS. */
  certFile?: string;
  /** Client key file, for mutual TLS. */
  keyFile?: string;
  /** Do the TLS handshake before the NATS protocol starts (server `handshake_first`). Default false. */
  handshakeFirst?: boolean;
}

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Server URLs, for example `nats://127.0.0.1:4222`. Default `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /** Connection name shown in server monitoring, for example `gc-node-a`. Default `gc`. */
  name: string;
  /** Authentication. Default none. */
  credentials?: Credentials;
  /** TLS. Default: none (plain TCP) unless a URL uses `tls://`. */
  tls?: TlsSettings;
  /** Fail unless JetStream is enabled for the account. Default true. */
  requireJetStream: boolean;
  /** Fail when the server is older than this version. Default {@link MIN_SERVER_VERSION} (`2.10.0`). */
  minServerVersion: string;
  /** Timeout of the first connection attempt, in ms. Default 5000. */
  timeoutMs: number;
  /** Reconnect forever (true) or give up after `maxReconnectAttempts` (false). Default true. */
  reconnectForever: boolean;
  /** Attempts per server when `reconnectForever` is false. Default 60. */
  maxReconnectAttempts: number;
  /** Wait between reconnect attempts to the same server, in ms. Default 250 (plus jitter). */
  reconnectTimeWaitMs: number;
  /** Client ping interval, in ms: a dead link is noticed after about `pingIntervalMs * maxPingOut`. Default 5000. */
  pingIntervalMs: number;
  /** Unanswered pings before the client declares the link stale and reconnects. Default 2. */
  maxPingOut: number;
  /** Extra nats.js options, applied last (escape hatch). */
  nats?: Partial<ConnectionOptions>;
}

/** Defaults for {@link ConnectOptions}. */
export function defaultConnectOptions(): ConnectOptions {
  return {
    servers: 'nats://127.0.0.1:4222',
    name: 'gc',
    requireJetStream: true,
    minServerVersion: MIN_SERVER_VERSION,
    timeoutMs: 5000,
    reconnectForever: true,
    maxReconnectAttempts: 60,
    reconnectTimeWaitMs: 250,
    pingIntervalMs: 5000,
    maxPingOut: 2,
  };
}

async function authenticator(c: Credentials | undefined): Promise<Authenticator | undefined> {
  if (!c) return undefined;
  const kinds = [c.credsFile || c.creds, c.token, c.user, c.nkeySeed].filter(Boolean).length;
  if (kinds > 1) {
    throw new GcError(
      ErrorCode.InvalidConfig,
      'credentials: give only one of credsFile/creds, token, user+pass, nkeySeed',
    );
  }
  const enc = new TextEncoder();
  if (c.credsFile) {
    let text: string;
    try {
      text = await readFile(c.credsFile, 'utf8');
    } catch (err) {
      throw new ConnectError(
        ErrorCode.AuthFailed,
        `cannot read the credentials file ${c.credsFile}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    return credsAuthenticator(enc.encode(text));
  }
  if (c.creds) return credsAuthenticator(enc.encode(c.creds));
  if (c.token) return tokenAuthenticator(c.token);
  if (c.user) return usernamePasswordAuthenticator(c.user, c.pass ?? '');
  if (c.nkeySeed) return nkeyAuthenticator(enc.encode(c.nkeySeed));
  return undefined;
}

function describeServers(servers: string | string[]): string {
  return Array.isArray(servers) ? servers.join(', ') : servers;
}

/**
 * Connects to NATS with gc's defaults (reconnect forever, fast stale-link detection) and checks the
 * server up front: its version is at least `minServerVersion` and JetStream is enabled. Each failure
 * is a typed error with a message that says what to do.
 *
 * @example
 * const nc = await connect({ servers: 'nats://127.0.0.1:4222', name: 'node-a' });
 */
export async function connect(opts: Partial<ConnectOptions> = {}): Promise<NatsConnection> {
  const o = { ...defaultConnectOptions(), ...opts };
  const auth = await authenticator(o.credentials);
  const tls = o.tls
    ? {
        ...(o.tls.caFile ? { caFile: o.tls.caFile } : {}),
        ...(o.tls.certFile ? { certFile: o.tls.certFile } : {}),
        ...(o.tls.keyFile ? { keyFile: o.tls.keyFile } : {}),
        ...(o.tls.handshakeFirst ? { handshakeFirst: true } : {}),
      }
    : undefined;
  let nc: NatsConnection;
  try {
    nc = await natsConnect({
      servers: o.servers,
      name: o.name,
      timeout: o.timeoutMs,
      maxReconnectAttempts: o.reconnectForever ? -1 : o.maxReconnectAttempts,
      reconnectTimeWait: o.reconnectTimeWaitMs,
      reconnectJitter: 100,
      pingInterval: o.pingIntervalMs,
      maxPingOut: o.maxPingOut,
      ...(auth ? { authenticator: auth } : {}),
      ...(tls ? { tls } : {}),
      ...o.nats,
    });
  } catch (err) {
    const e = err as Error & { code?: string };
    const isAuth = isAuthorizationError(err);
    throw new ConnectError(
      isAuth ? ErrorCode.AuthFailed : ErrorCode.ConnectFailed,
      isAuth
        ? `NATS refused the credentials at ${describeServers(o.servers)}: ${e.message} (check user/password, token or creds file)`
        : `cannot connect to NATS at ${describeServers(o.servers)}: ${e.message} (is nats-server running and reachable?)`,
      { cause: err },
    );
  }
  try {
    await checkServer(nc, o);
  } catch (err) {
    // The server check's error is the one to report; the close is cleanup.
    await nc.close().catch(() => undefined);
    throw err;
  }
  return nc;
}

async function checkServer(nc: NatsConnection, o: ConnectOptions): Promise<void> {
  const version = nc.info?.version ?? '0.0.0';
  if (compareVersions(version, o.minServerVersion) < 0)
    throw new ServerTooOldError(version, o.minServerVersion);
  if (!o.requireJetStream) return;
  try {
    const jsm = await jetstreamManager(nc, { timeout: o.timeoutMs });
    await jsm.getAccountInfo();
  } catch (err) {
    const e = err as Error;
    const code = jsApiCode(err);
    if (
      // (the client's JetStreamNotEnabled class is not exported; its name is its contract)
      e.name === 'JetStreamNotEnabled' ||
      isNoResponders(err) ||
      code === JsApiCode.JetStreamNotEnabled ||
      code === JsApiCode.JetStreamNotEnabledForAccount
    ) {
      throw new JetStreamUnavailableError(nc.getServer(), { cause: err });
    }
    throw new ConnectError(
      ErrorCode.ConnectFailed,
      `JetStream check failed on ${nc.getServer()}: ${e.message}`,
      { cause: err },
    );
  }
}
