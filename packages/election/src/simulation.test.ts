import { simulationSeeds, type PlantedBug } from '@gc/testkit';
import { describe, expect, it } from 'vitest';
import { loadMutant as loadMutantCode } from './mutants.js';
import {
  Invariant,
  formatFailure,
  simulate,
  type CreateOnStore,
  type InvariantName,
  type SimulationOptions,
  type SimulationResult,
} from './simulation.js';

// R16: the real election (createElectionOnStore) on the in-process lease store, several nodes on drifting
// and pausable clocks, a seeded scheduler injecting faults, invariants checked after every step. See
// simulation.ts and the README ("Deterministic simulation").
//
//   GC_SEED=<n>            replay seed n alone and print its whole trace (GC_SIM_MUTANT=<name>: with a mutant;
//                          GC_SIM_VERBOSE=1: with every request and every entry delivered to a node;
//                          GC_SIM_OPTIONS='{"faults":{"recreate":30}}': other simulation options, as JSON)
//   GC_LONG_TESTS=1        5000 seeds instead of 500 (GC_SIM_SEEDS=<n> sets the count)

const { long: LONG, replay: REPLAY, seeds: SEEDS } = simulationSeeds();
/** Seeds per `it`, so that progress shows and each test has a timeout that fits it. */
const CHUNK = 100;

const safety: InvariantName[] = [
  Invariant.OneActingLeader,
  Invariant.GrantOverlap,
  Invariant.EpochOrder,
  Invariant.AcquiredCurrent,
  Invariant.StaleEpochLeader,
];

// ----- planted bugs ----------------------------------------------------------------------------------------
// Each is a copy of the election's decision code (election.ts, leader.ts, follower.ts, core.ts) with one line
// changed, written next to it as git-ignored files, imported, and deleted afterwards (mutants.ts). `within` is
// the number of seeds the simulator may need to find a violation; the seed that finds it first is printed
// (and replays with GC_SEED=<n> GC_SIM_MUTANT=<name>).

interface Mutant extends PlantedBug<SimulationOptions> {
  /**
   * First seed tried (default 1). For the mutants only rare seeds catch, the search starts a little before the
   * seed that caught it when it was calibrated, so that the default run stays short; `GC_LONG_TESTS=1` starts
   * every search at seed 1.
   */
  from?: number;
}

const mutants: Mutant[] = [
  {
    name: 'deadline-from-reply',
    what: '(a) the renew deadline is measured from the reply instead of the send',
    line: '      l.lastGoodSentAt = Math.max(l.lastGoodSentAt, sentAt);',
    becomes: '      l.lastGoodSentAt = this.clock.now();',
    within: 20,
  },
  {
    name: 'takeover-after-half-ttl',
    what: '(b) a contender takes over after half a TTL',
    line: '    const wait = since + ttl - this.clock.now();',
    becomes: '    const wait = since + ttl / 2 - this.clock.now();',
    within: 10,
  },
  {
    name: 'unannounced-deletion-is-release',
    what: '(c) a deletion nobody announced (server marker, issue 18) is free at once, like a step-down',
    line: '      released: e.releasedEpoch !== undefined,',
    becomes: '      released: true,',
    within: 10,
  },
  {
    name: 'issue-18-old-rule',
    what: '(c) the rule before issue 18: create once the last live revision seen was silent for a TTL',
    line: '    return Math.max(0, since + Math.max(this.o.ttlMs, live?.ttl ?? 0) - now);',
    becomes: '    return Math.max(0, (live?.since ?? since) + Math.max(this.o.ttlMs, live?.ttl ?? 0) - now);',
    within: 60,
  },
  {
    name: 'acquired-unchecked',
    what: '(d) acquired is emitted without checking that the grant is still current',
    line: '    const overtaken = this.#seenWhileAcquiring > revision || this.highest > epoch;',
    becomes: '    const overtaken = false;',
    within: 10,
  },
  {
    name: 'epoch-ignores-highest',
    what: '(e) a new epoch does not use the highest epoch seen (wall clock only)',
    line: '    return Math.max(this.highest + 1, floor);',
    becomes: '    return Math.max(1, floor);',
    within: 200,
  },
  {
    name: 'isleader-trusts-state',
    what: 'isLeader() trusts the state instead of comparing the deadline with the clock (SIGSTOP)',
    line: '      this.clock.now() < l.lastGoodSentAt + this.o.renewDeadlineMs &&',
    becomes: '      true &&',
    within: 10,
  },
  // The bugs this simulation found in the real code (fixed); each line below is the fix, undone.
  {
    name: 'found-stale-poll-announces',
    what: 'found: a stale poll reply hides a later revision from the overtaken check',
    line: '    const overtaken = this.#seenWhileAcquiring > revision || this.highest > epoch;',
    becomes: '    const overtaken = this.obs.revision > revision || this.highest > epoch;',
    within: 40,
  },
  {
    name: 'found-same-revision-other-content',
    what: 'found: a reused revision number with other content is not seen as a change',
    line: '        ? e.record.epoch !== o.record.epoch || e.record.instance !== o.record.instance',
    becomes: '        ? false',
    within: 3000,
  },
  {
    name: 'found-cas-on-stale-observation',
    what: 'found: a node cut off or paused writes on an observation it has not confirmed since',
    line: '    if (this.clock.now() - this.#heardAt > this.o.pollIntervalMs + this.o.opTimeoutMs) {',
    becomes: '    if (false) {',
    within: 80,
  },
  {
    name: 'found-successor-across-recreate',
    what: 'found: a deletion in a recreated bucket passes for the successor of a grant seen in the old one',
    line: '    if (this.#lastLive && e.revision <= this.#lastLive.revision) this.#lastLive = undefined;',
    becomes: '',
    within: 60,
    // A bucket recreated while revisions are still low, then a grant deleted at once by a server marker (or
    // an unannounced deletion) that a node with a slow watch never saw: a short run with many of those.
    options: {
      steps: 200,
      faultRate: 0.15,
      faults: {
        recreate: 30,
        marker: 30,
        'delete-unannounced': 20,
        'watch-latency': 40,
        latency: 0,
        'server-restart': 0,
      },
    },
  },
  {
    name: 'found-successor-after-silence',
    what: 'found: after being cut off, a deletion in a recreated bucket passes for the successor of an old grant',
    line: '    if (outOfTouch) this.#lastLive = undefined;',
    becomes: '',
    within: 800,
    from: 241, // calibrated: caught by seed 252
  },
  // Removed: 'found-renew-after-deadline' (the renew guard in #renew undone: a process resumed past its
  // deadline still sends the renew its timer had due). No longer caught: ~1000 seeds under many pause- and
  // recreate-heavy options gave no violation that the line causes (the only ones were runs that diverged
  // seconds earlier and ended in the recreate-storm limit, which the real code shows too). The late renew
  // cannot keep leadership (the deadline timer queued right behind it demotes the node); the harm left is
  // its write landing on a revision reused by a recreated bucket, and the node taking that record back. The
  // own-record rule covers that now (`record.epoch >= #highestOther`, mutant found-own-record-after-other):
  // the poll reply queued during the pause shows it the other holder's higher epoch first.
  {
    name: 'found-own-record-after-other',
    what: 'found: a node takes back its own record although another holder had a higher epoch since',
    line: '    if (record.instance === this.instance && record.epoch >= this.#highestOther) {',
    becomes: '    if (record.instance === this.instance) {',
    within: 900,
    from: 825, // calibrated: caught by seed 831 (246 before the leader's reads were halved)
    options: { faults: { recreate: 30 } }, // more recreates
  },
  {
    name: 'found-same-entry-after-gap',
    what: 'found: after being out of touch, an entry equal to the last one seen keeps its old wait',
    line: "    if (this.note(e, outOfTouch) || !this.timers.has('action')) this.contend();",
    becomes: "    if (this.note(e) || !this.timers.has('action')) this.contend();",
    within: 400,
    from: 90, // calibrated: caught by seed 94
    options: { faults: { recreate: 30 } }, // more recreates
  },
  {
    name: 'found-restart-forgets-key',
    what: 'found: a restarted node treats an empty key (bucket recreated) as a new bucket',
    line: '    this.#sawEntry = this.highest > 0;',
    becomes: '    this.#sawEntry = false;',
    within: 40,
    // A node crashed, the bucket recreated meanwhile, and the node restarted while the leader still acts:
    // many crashes, recreates and cuts (a cut leader keeps acting until its deadline).
    options: {
      steps: 300,
      faultRate: 0.15,
      recreateGapTtls: 1.5,
      faults: {
        recreate: 40,
        crash: 80,
        cut: 40,
        pause: 0,
        'step-down': 0,
        marker: 0,
        'delete-unannounced': 0,
      },
    },
  },
];

/** Writes the mutant next to the decision code, imports it, and removes the files again. */
function loadMutant(m: Mutant): Promise<CreateOnStore> {
  return loadMutantCode(m.name, m.line, m.becomes);
}

function report(r: SimulationResult): string {
  return r.violation ? formatFailure(r) : `seed ${r.seed}: ok`;
}

describe.runIf(REPLAY !== undefined)('replay', () => {
  it(`seed ${REPLAY}`, async () => {
    const name = process.env.GC_SIM_MUTANT;
    const mutant = mutants.find((m) => m.name === name);
    if (name && !mutant) throw new Error(`no mutant ${name}: ${mutants.map((m) => m.name).join(', ')}`);
    const options = JSON.parse(process.env.GC_SIM_OPTIONS ?? '{}') as Partial<SimulationOptions>;
    const r = await simulate({
      ...mutant?.options,
      ...options,
      seed: REPLAY!,
      verbose: process.env.GC_SIM_VERBOSE === '1',
      ...(mutant ? { create: await loadMutant(mutant) } : {}),
    });
    console.log([r.config, ...r.trace].join('\n'));
    const v = r.violation;
    expect(
      v,
      v && `seed ${r.seed}: ${v.invariant} at ${v.at} ms: ${v.message} (trace above)`,
    ).toBeUndefined();
  });
});

describe.skipIf(REPLAY !== undefined)('R16 deterministic simulation of the election', () => {
  for (let from = 1; from <= SEEDS; from += CHUNK) {
    const to = Math.min(SEEDS, from + CHUNK - 1);
    it(`holds every invariant, seeds ${from}–${to}`, { timeout: 120_000 }, async () => {
      for (let seed = from; seed <= to; seed++) {
        const r = await simulate({ seed });
        if (r.violation) expect.fail(report(r));
      }
    });
  }

  it('is deterministic: the same seed gives the same trace, another seed another one', async () => {
    const a = await simulate({ seed: 7 });
    const b = await simulate({ seed: 7 });
    const c = await simulate({ seed: 8 });
    expect(a.trace.length).toBeGreaterThan(100);
    expect(b.trace).toEqual(a.trace);
    expect(b.stats).toEqual(a.stats);
    expect(c.trace).not.toEqual(a.trace);
  });

  describe('limits it shows (documented in the README, not bugs of the election)', () => {
    const limits: Array<{ name: string; what: string; options: Partial<SimulationOptions>; within: number }> =
      [
        {
          name: 'lossy-server-restart',
          what: 'a server that loses acknowledged writes (revisions reused) lets two nodes act at once',
          options: { faults: { 'server-restart-lossy': 4 } },
          within: 200,
        },
        {
          name: 'recreate-storm',
          what: 'two bucket recreates within about a TTL can erase a grant another node never saw',
          options: { recreateGapTtls: 0, faults: { recreate: 12 } },
          within: 120,
        },
        {
          name: 'epoch-floor-off',
          what: 'without the wall-clock floor, a deletion nobody announced can take the highest epoch along',
          // Grants deleted unannounced (or by a marker) and nodes that missed them (crashed meanwhile).
          options: {
            wallClockEpochFloor: false,
            faults: { 'delete-unannounced': 20, marker: 20, crash: 20 },
          },
          within: 20,
        },
      ];
    for (const l of limits) {
      it(`${l.name}: ${l.what}`, { timeout: 120_000 }, async () => {
        let found: SimulationResult | undefined;
        for (let seed = 1; seed <= l.within && !found; seed++) {
          const r = await simulate({ ...l.options, seed });
          if (r.violation) found = r;
        }
        expect(found, `no violation in ${l.within} seeds`).toBeDefined();
        console.log(
          `limit ${l.name}: shown by seed ${found!.seed} (${found!.violation!.invariant}: ${found!.violation!.message})`,
        );
        expect(safety).toContain(found!.violation!.invariant);
      });
    }
  });

  describe('planted bugs: a copy of the decision code with one line changed is caught', () => {
    for (const m of mutants) {
      it(`${m.name}: ${m.what}`, { timeout: 120_000 }, async () => {
        const create = await loadMutant(m);
        let found: SimulationResult | undefined;
        const from = LONG ? 1 : (m.from ?? 1);
        for (let seed = from; seed <= m.within && !found; seed++) {
          const r = await simulate({ ...m.options, seed, create });
          if (r.violation) found = r;
        }
        expect(found, `mutant ${m.name} survived seeds ${from}–${m.within}`).toBeDefined();
        console.log(
          `mutant ${m.name}: caught by seed ${found!.seed} (${found!.violation!.invariant}: ${found!.violation!.message}); replay: GC_SEED=${found!.seed} GC_SIM_MUTANT=${m.name}`,
        );
        expect(safety).toContain(found!.violation!.invariant);
        // The changed line is what breaks: the real code passes the same seed.
        const real = await simulate({ ...m.options, seed: found!.seed });
        expect(real.violation, report(real)).toBeUndefined();
      });
    }
  });
});
