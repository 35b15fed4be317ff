/** A source of uniform numbers in [0, 1). Injected so a seed reproduces a whole price walk. */
export type Random = () => number;

/** A generator whose whole position is one number, so a journal can save it and carry on from it. */
export type SeededRandom = Random & {
  /** The generator's position: restoring it makes the next draws the ones that would have come. */
  state(): number;
  restore(state: number): void;
};

/** mulberry32: tiny, fast, and good enough for simulated prices (not for anything secret). */
export function seededRandom(seed: number): SeededRandom {
  let position = seed >>> 0;
  const next = (() => {
    position = (position + 0x6d2b79f5) >>> 0;
    let t = position;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }) as SeededRandom;
  next.state = () => position;
  next.restore = (state: number) => {
    position = state >>> 0;
  };
  return next;
}

/** Whether a generator can report and restore its position (an injected plain function cannot). */
export function isSeeded(random: Random): random is SeededRandom {
  const candidate = random as Partial<SeededRandom>;
  return typeof candidate.state === "function" && typeof candidate.restore === "function";
}

/** Standard normal by Box–Muller; 1 - u keeps log() away from 0. */
export function gaussian(random: Random): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
