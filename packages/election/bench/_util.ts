// Shared helpers of the election benchmarks (files starting with "_" are not benchmarks).

export { median } from '@gc/testkit';

/** Rounds a figure for the JSON line. */
export const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Progress on stderr; the JSON line alone goes to stdout, last. */
export function progress(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Prints the one JSON result line. */
export function report(
  result: Record<string, unknown> & { bench: string; ratio: number; bar: unknown; pass: boolean },
): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
