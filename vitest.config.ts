import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// One root config; one vitest project per workspace package (unit tests next to the code, named
// after the package), plus `e2e` (multi-process scenarios on real nats-server) and `smoke` (the
// quick e2e subset that also runs on Node 24).
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const conditions = ['@gc/source', 'node', 'import', 'module', 'default'];

function packageProjects(): Array<{
  extends: true;
  test: { name: string; root: string; include: string[] };
}> {
  const out: Array<{ extends: true; test: { name: string; root: string; include: string[] } }> = [];
  for (const group of ['packages', 'tooling', 'apps']) {
    if (!existsSync(group)) continue;
    for (const d of readdirSync(group)) {
      const dir = join(group, d);
      if (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'src'))) continue;
      const { name } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string };
      out.push({ extends: true as const, test: { name, root: dir, include: ['src/**/*.test.ts'] } });
    }
  }
  return out;
}

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@gc/source'] } },
  test: {
    globalSetup: [here('./tooling/testkit/src/global-setup.ts')],
    setupFiles: [here('./tooling/testkit/src/vitest-setup.ts')],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    pool: 'forks',
    // Quiet logs in tests unless asked for (GC_LOG_LEVEL=debug pnpm exec vitest ...).
    env: { GC_LOG_LEVEL: process.env.GC_LOG_LEVEL ?? 'warn' },
    projects: [
      ...packageProjects(),
      {
        extends: true,
        test: {
          name: 'e2e',
          root: 'e2e',
          include: ['**/*.e2e.test.ts'],
          exclude: ['smoke/**', 'node_modules/**'],
        },
      },
      { extends: true, test: { name: 'smoke', root: 'e2e', include: ['smoke/**/*.test.ts'] } },
    ],
  },
});
