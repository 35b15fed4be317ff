import assert from "node:assert/strict";
import { QuoteSubscriptions } from "../../lib/common/quote-subscriptions";
import type { QuoteSource, Subscriber } from "../../lib/common/quote-subscriptions";
import { BrokerError } from "../../lib/protocol/errors";

/** A broker's quote side that answers after a random pause and records every call in order. */
class SlowSource implements QuoteSource {
  readonly calls: string[] = [];
  readonly held = new Set<string>();
  refuse: ((keys: string[]) => BrokerError | undefined) | undefined;
  failUnsubscribe = false;
  #random: () => number;

  constructor(random: () => number = () => 0) {
    this.#random = random;
  }

  async subscribeQuotes(keys: string[]): Promise<void> {
    await this.#pause();
    const refusal = this.refuse?.(keys);
    this.calls.push(`+${keys.join(",")}${refusal === undefined ? "" : "!"}`);
    if (refusal !== undefined) throw refusal;
    for (const key of keys) {
      assert.ok(!this.held.has(key), `${key} subscribed twice without an unsubscribe between`);
      this.held.add(key);
    }
  }

  async unsubscribeQuotes(keys: string[]): Promise<void> {
    await this.#pause();
    this.calls.push(`-${keys.join(",")}`);
    if (this.failUnsubscribe) throw new BrokerError("NETWORK", "unsubscribe lost");
    for (const key of keys) {
      assert.ok(this.held.has(key), `${key} unsubscribed while not subscribed`);
      this.held.delete(key);
    }
  }

  #pause(): Promise<void> {
    const ms = Math.floor(this.#random() * 3);
    return new Promise((resolve) => (ms === 0 ? setImmediate(resolve) : setTimeout(resolve, ms)));
  }
}

function subscriber(): Subscriber {
  return { symbols: new Set<string>() };
}

function make(source: QuoteSource, failures: unknown[] = [], cap?: { max: number; holder: string }) {
  return new QuoteSubscriptions<Subscriber>({
    source,
    ...(cap === undefined ? {} : { cap }),
    onUnsubscribeFailed: (keys, error) => failures.push([keys.join(","), error]),
  });
}

describe("QuoteSubscriptions (ref-counted over subscribers)", function () {
  it("asks the broker once per symbol: for the first subscriber, and to let go after the last", async function () {
    const source = new SlowSource();
    const quotes = make(source);
    const a = subscriber();
    const b = subscriber();
    assert.deepEqual(await quotes.subscribe(a, ["INFY", "NSE:TCS"]), ["NSE:INFY", "NSE:TCS"]);
    assert.deepEqual(await quotes.subscribe(b, ["NSE:INFY"]), ["NSE:INFY"]);
    assert.deepEqual(Object.fromEntries(quotes.counts()), { "NSE:INFY": 2, "NSE:TCS": 1 });
    assert.deepEqual(await quotes.unsubscribe(a, ["INFY"]), ["NSE:TCS"]);
    assert.deepEqual(source.calls, ["+NSE:INFY,NSE:TCS"], "b still holds INFY");
    await quotes.unsubscribe(b, ["INFY"]);
    assert.deepEqual(source.calls, ["+NSE:INFY,NSE:TCS", "-NSE:INFY"]);
    assert.deepEqual([...(quotes.subscribersOf("NSE", "TCS") ?? [])], [a]);
    assert.equal(quotes.subscribersOf("NSE", "INFY"), undefined);
  });

  it("a subscriber asking while the broker is still subscribing waits for that answer, and shares a refusal", async function () {
    const source = new SlowSource(() => 0.9);
    source.refuse = () => new BrokerError("VALIDATION", "symbols: unknown instrument");
    const quotes = make(source);
    const a = subscriber();
    const b = subscriber();
    const first = quotes.subscribe(a, ["XYZ"]);
    const second = quotes.subscribe(b, ["NSE:XYZ"]);
    await assert.rejects(first, /unknown instrument/);
    await assert.rejects(second, /unknown instrument/);
    assert.equal(a.symbols.size + b.symbols.size, 0);
    assert.equal(quotes.counts().size, 0);
    assert.deepEqual(source.calls, ["+NSE:XYZ!"], "asked once");
  });

  it("refuses beyond the cap, naming the field and the holder, and changes nothing", async function () {
    const source = new SlowSource();
    const quotes = make(source, [], { max: 2, holder: "a connection" });
    const a = subscriber();
    await quotes.subscribe(a, ["A", "B"]);
    await assert.rejects(
      quotes.subscribe(a, ["C", "B"]),
      (err: BrokerError) =>
        err.code === "VALIDATION" &&
        /^symbols: a connection may hold at most 2 subscriptions \(it holds 2, this adds 1\)/.test(
          err.message,
        ),
    );
    assert.deepEqual([...a.symbols], ["NSE:A", "NSE:B"]);
    await quotes.subscribe(a, ["A", "B"]);
  });

  it("a failed broker unsubscribe is reported, not thrown; the subscriber has let go", async function () {
    const source = new SlowSource();
    const failures: unknown[] = [];
    const quotes = make(source, failures);
    const a = subscriber();
    await quotes.subscribe(a, ["INFY"]);
    source.failUnsubscribe = true;
    assert.deepEqual(await quotes.unsubscribe(a, ["INFY"]), []);
    assert.equal(failures.length, 1);
    assert.equal((failures[0] as [string])[0], "NSE:INFY");
  });

  it("clear() forgets every holder at once (the broker is gone), and they can subscribe afresh", async function () {
    const source = new SlowSource();
    const quotes = make(source);
    const a = subscriber();
    const b = subscriber();
    await quotes.subscribe(a, ["INFY"]);
    await quotes.subscribe(b, ["TCS"]);
    quotes.clear();
    assert.equal(a.symbols.size + b.symbols.size + quotes.counts().size, 0);
    source.held.clear();
    await quotes.subscribe(a, ["INFY"]);
    assert.deepEqual(source.calls, ["+NSE:INFY", "+NSE:TCS", "+NSE:INFY"]);
  });

  it("3000 interleaved subscribes, unsubscribes and leaves by 8 subscribers: the broker ends holding exactly their union", async function () {
    this.timeout(60_000);
    let seed = 11;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const source = new SlowSource(random);
    source.refuse = (keys) =>
      random() < 0.05 ? new BrokerError("NETWORK", `lost ${keys.join(",")}`) : undefined;
    const quotes = make(source);
    const subscribers = Array.from({ length: 8 }, subscriber);
    const symbols = ["A", "B", "C", "D", "E", "NSE:A", "BSE:A"];
    const pick = (): string[] => symbols.filter(() => random() < 0.3);
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 3000; i++) {
      const who = subscribers[Math.floor(random() * subscribers.length)]!;
      const roll = random();
      if (roll < 0.5) work.push(quotes.subscribe(who, pick()).catch(() => undefined));
      else if (roll < 0.9) work.push(quotes.unsubscribe(who, pick()));
      else quotes.releaseAll(who);
      if (i % 50 === 0) await Promise.all(work.splice(0));
    }
    await Promise.all(work);
    await quotes.settled();
    const union = new Set(subscribers.flatMap((s) => [...s.symbols]));
    assert.deepEqual([...source.held].sort(), [...union].sort());
    assert.deepEqual([...quotes.counts().keys()].sort(), [...union].sort());
    for (const [key, count] of quotes.counts()) {
      assert.equal(count, subscribers.filter((s) => s.symbols.has(key)).length, key);
    }
  });
});
