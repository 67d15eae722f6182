// apps/cli/README.md's command reference (between <!-- commands --> and <!-- commandsstop -->) is generated
// from the commands by scripts/cli-readme.mjs (`pnpm readme:cli`); this fails, naming the stale commands, when
// it no longer matches them. The script reads the CLI's build output: when that is missing or older than the
// CLI's sources, the test builds it first (the normal build, through turbo) and fails with the build's output
// if that does not work.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const cliRoot = join(repoRoot, 'apps', 'cli');
const buildCommand = 'pnpm exec turbo run build --filter=@gc/cli --output-logs=errors-only';

function run(
  file: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: repoRoot, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        const killed = err?.killed ? `\n(killed after ${timeoutMs} ms)` : '';
        resolve({ code, stdout, stderr: stderr + killed });
      },
    );
  });
}

/** Why the build output cannot be used as it is (missing, or older than a source file), or undefined. */
function buildProblem(): string | undefined {
  const manifest = join(cliRoot, 'oclif.manifest.json');
  if (!existsSync(manifest) || !existsSync(join(cliRoot, 'dist', 'commands')))
    return 'missing (no apps/cli/oclif.manifest.json or dist/commands)';
  const builtAt = statSync(manifest).mtimeMs;
  const sources = (readdirSync(join(cliRoot, 'src'), { recursive: true }) as string[])
    .filter((f) => /\.[cm]?[jt]sx?$/.test(f) && !/\.test\.[cm]?[jt]sx?$/.test(f))
    .filter((f) => !/(^|[\\/])(test|__tests__)[\\/]/.test(f))
    .map((f) => join('src', f));
  const newer = ['package.json', ...sources].filter((f) => statSync(join(cliRoot, f)).mtimeMs > builtAt);
  return newer.length ? `older than apps/cli/${newer.slice(0, 3).join(', apps/cli/')}` : undefined;
}

describe('apps/cli/README.md', () => {
  beforeAll(async () => {
    const problem = buildProblem();
    if (!problem) return;
    // scripts/lib.sh puts pnpm and the repo's tools on PATH, as for every other repo script.
    const r = await run('bash', ['-c', `source scripts/lib.sh && ${buildCommand}`], 900_000);
    if (r.code !== 0) {
      throw new Error(
        `apps/cli's build output is ${problem}, and building it (${buildCommand}) failed with exit ${r.code}:\n` +
          `${r.stdout}\n${r.stderr}`,
      );
    }
  }, 910_000);

  it('documents the commands as they are (regenerate: pnpm readme:cli)', async () => {
    const r = await run(process.execPath, ['scripts/cli-readme.mjs', '--check'], 120_000);
    if (r.code !== 0)
      expect.fail(`node scripts/cli-readme.mjs --check exited ${r.code}:\n${r.stderr}${r.stdout}`);
    expect(r.stdout).toMatch(/up to date/);
  }, 130_000);
});
