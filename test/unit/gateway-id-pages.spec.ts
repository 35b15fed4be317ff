import assert from "node:assert/strict";
import { IdPages } from "../../lib/gateway/id-pages";
import { BrokerError } from "../../lib/protocol/errors";

describe("IdPages: one scan answers pages until the list changes or it is old", function () {
  it("scans again after changed() and after maxAgeMs, not in between", async function () {
    let now = 0;
    let scans = 0;
    let list = ["c", "a", "b"];
    const pages = new IdPages<string>({
      scan: () => {
        scans++;
        return Promise.resolve([...list]);
      },
      idOf: (id) => id,
      request: "GET_THINGS",
      items: "things",
      maxAgeMs: 1000,
      now: () => now,
    });
    assert.deepEqual(await pages.page(2, undefined), ["a", "b"]);
    list = ["a", "b", "c", "d"];
    now = 1000;
    assert.deepEqual(await pages.page(2, "b"), ["c"], "within its age the scan answers");
    assert.equal(scans, 1);
    now = 1001;
    assert.deepEqual(await pages.page(2, "b"), ["c", "d"], "older, the list is read again");
    assert.equal(scans, 2);
    list = ["a", "b", "c", "d", "e"];
    pages.changed();
    assert.deepEqual(await pages.page(undefined, "c"), ["d", "e"]);
    assert.equal(scans, 3);
  });

  it("a failed scan is not kept, and a scan under way when the list changes is not shared after", async function () {
    let fail = true;
    let release: (() => void) | undefined;
    let scans = 0;
    const pages = new IdPages<string>({
      scan: async () => {
        const scan = ++scans;
        if (fail) throw new BrokerError("NETWORK", "broker away");
        await new Promise<void>((resolve) => (release = resolve));
        return [`v${scan}`];
      },
      idOf: (id) => id,
      request: "GET_THINGS",
      items: "things",
    });
    await assert.rejects(pages.page(10, undefined), /broker away/);
    fail = false;
    const first = pages.page(10, undefined);
    await new Promise((resolve) => setImmediate(resolve));
    const early = release!;
    pages.changed();
    const second = pages.page(10, undefined);
    await new Promise((resolve) => setImmediate(resolve));
    early();
    release!();
    assert.deepEqual(await first, ["v2"]);
    assert.deepEqual(await second, ["v3"], "asked after the change: a scan of its own");
  });
});
