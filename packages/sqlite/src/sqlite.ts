import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { IntegrityCheckError, SqliteDriverError } from './errors.js';
import type { OpenDatabaseOptions, SqliteDatabase } from './types.js';

/** The better-sqlite3 builds gc can open databases with. */
export type SqliteDriverName = 'better-sqlite3' | 'better-sqlite3-napi';

/** Which driver {@link openDatabase} uses in this process, and why. */
export interface SqliteDriverInfo {
  /** `better-sqlite3` (12.x, node::ObjectWrap) or `better-sqlite3-napi` (13.x, Node-API 10). */
  name: SqliteDriverName;
  /** The driver package's version. */
  version: string;
  /** Why this one: forced by `GC_SQLITE_DRIVER`, implied by `GC_SQLITE_NATIVE_BINDING`, or by the Node-API level. */
  reason: string;
}

/** The Node-API level better-sqlite3 13 is compiled for. */
const NAPI_13 = 10;
const requireCjs = createRequire(import.meta.url);
let loaded: { ctor: typeof Database; info: SqliteDriverInfo } | undefined;

function chooseDriver(): { name: SqliteDriverName; reason: string } {
  const forced = process.env.GC_SQLITE_DRIVER;
  if (forced !== undefined && forced !== '') {
    if (forced !== 'better-sqlite3' && forced !== 'better-sqlite3-napi') {
      throw new SqliteDriverError(
        forced,
        `GC_SQLITE_DRIVER=${forced} is not a driver gc knows: use better-sqlite3 (12.x) or better-sqlite3-napi (13.x), or unset it to choose by the Node version`,
      );
    }
    return { name: forced, reason: 'GC_SQLITE_DRIVER' };
  }
  if (process.env.GC_SQLITE_NATIVE_BINDING) {
    return { name: 'better-sqlite3', reason: 'GC_SQLITE_NATIVE_BINDING names a better-sqlite3 12 addon' };
  }
  const napi = Number(process.versions.napi ?? 0);
  return napi >= NAPI_13
    ? { name: 'better-sqlite3-napi', reason: `Node-API ${napi} (>= ${NAPI_13})` }
    : { name: 'better-sqlite3', reason: `Node-API ${napi} (< ${NAPI_13})` };
}

function loadDriver(): { ctor: typeof Database; info: SqliteDriverInfo } {
  if (loaded) return loaded;
  const { name, reason } = chooseDriver();
  const napi = Number(process.versions.napi ?? 0);
  if (name === 'better-sqlite3-napi' && napi < NAPI_13) {
    throw new SqliteDriverError(
      name,
      `better-sqlite3-napi (13.x) needs Node-API ${NAPI_13}; Node ${process.version} has ${napi}: use Node 22.14 or newer, or unset GC_SQLITE_DRIVER`,
    );
  }
  let ctor: typeof Database;
  let version: string;
  try {
    ctor = requireCjs(name) as typeof Database;
    version = (requireCjs(`${name}/package.json`) as { version: string }).version;
  } catch (err) {
    const hint =
      name === 'better-sqlite3'
        ? 'it is an optional dependency compiled from source at install time (needs python3, make and a C++ compiler on Node < 22); reinstall after installing them, or run on Node 22.14+ where the prebuilt better-sqlite3-napi is used'
        : 'reinstall the package (it ships prebuilt binaries for linux, darwin and win32 on x64 and arm64)';
    throw new SqliteDriverError(
      name,
      `cannot load the SQLite driver ${name} on Node ${process.version} (${reason}): ${(err as Error).message}; ${hint}`,
      err,
    );
  }
  loaded = { ctor, info: { name, version, reason } };
  return loaded;
}

/**
 * The SQLite driver this process uses (loading it on first use). On Node-API 10 and newer (Node 22.14+,
 * 24) that is better-sqlite3 13 (`better-sqlite3-napi`), built on Node-API; on older Node it is
 * better-sqlite3 12. Why two: 12 wraps its objects in `node::ObjectWrap`, whose Node 24 header
 * registers an environment cleanup hook per object, and a statement finalized by the garbage
 * collector outside any context then aborts the process (`RemoveEnvironmentCleanupHook: env !=
 * nullptr`); 13 does not run on Node 20. `GC_SQLITE_DRIVER` forces one; `GC_SQLITE_NATIVE_BINDING`
 * (a separately built 12.x addon) implies 12.
 *
 * @throws SqliteDriverError when the chosen driver cannot be loaded on this Node.
 */
export function sqliteDriver(): SqliteDriverInfo {
  return { ...loadDriver().info };
}

/**
 * The one place gc opens an SQLite database, with the driver {@link sqliteDriver} chose. Passes
 * `nativeBinding` from the `GC_SQLITE_NATIVE_BINDING` environment variable when it is set (a
 * separately built better-sqlite3 12 addon), otherwise the driver finds its own.
 *
 * @example
 * const db = openDatabase('/data/app.db');
 * db.pragma('journal_mode = WAL');
 */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): SqliteDatabase {
  const { ctor, info } = loadDriver();
  const nativeBinding = process.env.GC_SQLITE_NATIVE_BINDING;
  return new ctor(
    path,
    nativeBinding && info.name === 'better-sqlite3' ? { nativeBinding, ...options } : options,
  );
}

/** Forgets the loaded driver so the next call chooses again (tests of the selection only). @internal */
export function resetSqliteDriverForTests(): void {
  loaded = undefined;
}

/** Runs `PRAGMA integrity_check` on an open database; throws {@link IntegrityCheckError} unless it says ok. */
export function assertIntegrity(db: SqliteDatabase, path: string): void {
  const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
  const problems = rows.map((r) => r.integrity_check).filter((s) => s !== 'ok');
  if (problems.length > 0) throw new IntegrityCheckError(path, problems);
}

/**
 * Opens the file at `path`, runs `PRAGMA integrity_check` and closes it. The file must not be in use
 * by anyone else; opening it may create and remove `-wal`/`-shm` files next to it but does not change
 * its pages (nothing is written).
 */
export function checkIntegrity(path: string): void {
  const db = openDatabase(path, { fileMustExist: true });
  try {
    assertIntegrity(db, path);
  } finally {
    db.close();
  }
}
