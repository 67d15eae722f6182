import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base.ts';

// The capture worker's thread entry is its own bundle: `src/worker/facade.ts` (bundled into
// `dist/index.js`) starts it from `dist/worker/entry.js`, a path relative to that bundle.
export default defineConfig(
  packageBuild({ entry: { index: 'src/index.ts', 'worker/entry': 'src/worker/entry.ts' } }),
);
