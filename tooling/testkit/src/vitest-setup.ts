// Registered as a vitest setup file for every project: closes whatever the testkit started in a
// test file, even when a test failed or forgot to close it.
import { afterAll } from 'vitest';
import { cleanupAll } from './cleanup.js';

afterAll(async () => {
  await cleanupAll();
});
