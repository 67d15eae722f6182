import { z } from 'zod';

/**
 * A backend as configuration gives it (the `backend:` block of an active-passive app in `gc.yaml`, see
 * {@link BackendConfig}): the kind, an optional instance name and the kind's options. Unknown keys are
 * refused; the options themselves are checked by the backend kind when {@link createBackendFromConfig}
 * creates the instance, as only the kind knows them.
 *
 * @example
 * const backend = backendConfigSchema.parse({ type: 'process', options: { command: 'node', args: ['server.js'] } });
 * await createBackendFromConfig(backend);
 */
export const backendConfigSchema = z
  .object({
    type: z.string().min(1).describe('process, systemd, docker or the name of a backend package'),
    name: z.string().optional(),
    options: z
      .record(z.string(), z.unknown())
      .describe('an object of the backend kind\'s options, like { command: "..." }')
      .optional(),
  })
  .strict()
  .describe('an object like { type: "process", options: { command: "..." } }');
