import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base.ts';

// Every command file is an entry (oclif discovers them in dist/commands); shared code is split out.
export default defineConfig(
  packageBuild({
    entry: ['src/index.ts', 'src/commands/**/*.ts', '!src/**/*.test.ts'],
    splitting: true,
    dts: false,
  }),
);
