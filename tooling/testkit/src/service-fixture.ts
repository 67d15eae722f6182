import { fileURLToPath } from 'node:url';

/**
 * The HTTP test service (`GET /` → 200 "ok <pid>"), run by the process and systemd backends' tests: its
 * environment (PORT, HOST, CRASH_AFTER_MS, EXIT_CODE, IGNORE_TERM, GRANDCHILD, UNHEALTHY_FILE) is described at
 * the top of the file. Resolved from `src/` whether this module runs from source or from `dist/`.
 */
export const HTTP_SERVICE_FIXTURE = fileURLToPath(new URL('../src/fixtures/service.mjs', import.meta.url));
