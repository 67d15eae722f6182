import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.base.ts';

// The capture worker is its own entry: `worker-primary.ts` starts it from `dist/primary-worker.js`.
export default defineConfig(packageBuild({ entry: ['src/index.ts', 'src/primary-worker.ts'] }));
