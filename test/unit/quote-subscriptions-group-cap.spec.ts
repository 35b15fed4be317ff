import assert from "node:assert/strict";
import { QuoteSubscriptions } from "../../lib/common/quote-subscriptions";
import type { QuoteSource, Subscriber } from "../../lib/common/quote-subscriptions";
import { BrokerError } from "../../lib/protocol/errors";

interface Member extends Subscriber {
  readonly group: string;
}

/** A quote source that answers after a turn or two and refuses some subscribes, chosen by `random`. */
class FlakySource implements QuoteSource {
  constructor(private readonly random: () => number) {}

  async subscribeQuotes(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, Math.floor(this.random() * 3)));
    if (this.random() < 0.2) throw new BrokerError("NETWORK", "subscribe lost");
  }

  async unsubscribeQuotes(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, Math.floor(this.random() * 3)));
  }
}

/** Deterministic: a failing seed replays. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe("QuoteSubscriptions: a cap per group of subscribers (an api key over its connections)", function () {
  it("refuses past the group's cap naming it, and another group is not touched", async function () {
    const quotes = new QuoteSubscriptions<Member>({
      source: new FlakySource(() => 0.5),
      cap: { max: 4, holder: "a connection" },
      groupCap: { max: 6, holder: "the key", groupOf: (member) => member.group },
      onUnsubscribeFailed: () => undefined,
    });
    const a1: Member = { group: "a", symbols: new Set() };
    const a2: Member = { group: "a", symbols: new Set() };
    const b1: Member = { group: "b", symbols: new Set() };
    await quotes.subscribe(a1, ["W", "X", "Y", "Z"]);
    await assert.rejects(
      quotes.subscribe(a2, ["W", "X", "Q"]),
      (error: BrokerError) =>
        error.code === "VALIDATION" &&
        error.message ===
          "symbols: the key may hold at most 6 subscriptions (it holds 4, this adds 3); unsubscribe some first",
    );
    assert.equal(a2.symbols.size, 0, "a refused request adds nothing");
    assert.equal(quotes.heldByGroup("a"), 4);
    await quotes.subscribe(b1, ["W", "X", "Y", "Z"]);
    assert.equal(quotes.heldByGroup("b"), 4);
    // The connection's own cap is named first when both are over.
    await assert.rejects(quotes.subscribe(a1, ["P", "Q", "R"]), /a connection may hold at most 4/);
    await quotes.subscribe(a2, ["W", "X"]);
    assert.equal(quotes.heldByGroup("a"), 6);
    quotes.releaseAll(a1);
    assert.equal(quotes.heldByGroup("a"), 2);
    quotes.clear();
    assert.equal(quotes.heldByGroup("a") + quotes.heldByGroup("b"), 0);
  });

  for (const seed of [1, 2, 3, 4, 5]) {
    it(`holds the count equal to what the group's members hold under concurrent random use (seed ${seed})`, async function () {
      const random = seeded(seed);
      const max = 12;
      const quotes = new QuoteSubscriptions<Member>({
        source: new FlakySource(random),
        cap: { max: 8, holder: "a connection" },
        groupCap: { max, holder: "the key", groupOf: (member) => member.group },
        onUnsubscribeFailed: () => undefined,
      });
      const members: Member[] = [];
      for (const group of ["a", "b", "c"]) {
        for (let i = 0; i < 4; i++) members.push({ group, symbols: new Set() });
      }
      const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
      const symbols = Array.from({ length: 15 }, (_, i) => `S${i}`);
      for (let round = 0; round < 150; round++) {
        const ops = Array.from({ length: 1 + Math.floor(random() * 5) }, () => {
          const member = pick(members);
          const some = Array.from({ length: 1 + Math.floor(random() * 5) }, () => pick(symbols));
          const roll = random();
          if (roll < 0.6) return quotes.subscribe(member, some).catch(() => undefined);
          if (roll < 0.9) return quotes.unsubscribe(member, some);
          quotes.releaseAll(member);
          return Promise.resolve();
        });
        await Promise.all(ops);
        for (const group of ["a", "b", "c"]) {
          const held = members
            .filter((member) => member.group === group)
            .reduce((sum, member) => sum + member.symbols.size, 0);
          assert.equal(quotes.heldByGroup(group), held, `round ${round}, group ${group}`);
          assert.ok(held <= max, `round ${round}: group ${group} holds ${held}`);
        }
      }
      for (const member of members) quotes.releaseAll(member);
      for (const group of ["a", "b", "c"]) assert.equal(quotes.heldByGroup(group), 0);
      await quotes.settled();
    });
  }
});
