import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { KiteSessionStore, kiteTokenDay } from "../../lib/kite/session-store";

/** An instant given as IST wall-clock text. */
function ist(text: string): number {
  return Date.parse(`${text}+05:30`);
}

const TOKEN = "tokSECRETaccess0123456789";
const SESSION = { user_id: "AB1234", user_name: "Test Trader", login_time: "2026-12-04T03:30:00.000Z" };

describe("KiteSessionStore: the day's Kite login across restarts (issue 10)", function () {
  let dir: string;
  let now: number;
  // null: a runtime that gives no secret (credentialSecret false).
  const store = (secret: string | null = "runtime-secret"): KiteSessionStore =>
    new KiteSessionStore({ dir, secret: secret ?? undefined, now: () => now });

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kite-session-"));
    now = ist("2026-12-04T09:00:00");
  });
  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a token day runs from 06:00 IST to 06:00 IST the next morning", function () {
    assert.equal(kiteTokenDay(ist("2026-12-04T06:00:00")), "2026-12-04");
    assert.equal(kiteTokenDay(ist("2026-12-05T05:59:59")), "2026-12-04");
    assert.equal(kiteTokenDay(ist("2026-12-05T06:00:00")), "2026-12-05");
    assert.equal(kiteTokenDay(ist("2026-12-04T02:00:00")), "2026-12-03");
  });

  it("a new store on the same dir (a restart) gets the token back the same day, until 06:00 IST next day", function () {
    store().save("b1", "apikey", TOKEN, SESSION, "yesterdays-token");
    const file = store().fileOf("b1");
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const text = fs.readFileSync(file, "utf8");
    assert.ok(!text.includes(TOKEN) && !text.includes("apikey") && !text.includes("AB1234"), "sealed");
    for (const at of ["2026-12-04T15:30:00", "2026-12-05T05:59:59"]) {
      now = ist(at);
      assert.deepEqual(store().load("b1", "apikey", "yesterdays-token"), {
        accessToken: TOKEN,
        session: SESSION,
        day: "2026-12-04",
      });
    }
    now = ist("2026-12-05T06:00:00");
    assert.deepEqual(store().load("b1", "apikey", "yesterdays-token"), { discarded: "other-day" });
    assert.equal(fs.existsSync(file), false, "an old day's token is deleted");
    assert.equal(store().load("b1", "apikey", "yesterdays-token"), undefined);
  });

  it("a login before 06:00 IST belongs to the day before and ends at 06:00", function () {
    now = ist("2026-12-05T02:00:00");
    store().save("b1", "apikey", TOKEN, SESSION);
    now = ist("2026-12-05T05:00:00");
    assert.equal((store().load("b1", "apikey", "") as { accessToken: string }).accessToken, TOKEN);
    now = ist("2026-12-05T06:00:01");
    assert.deepEqual(store().load("b1", "apikey", ""), { discarded: "other-day" });
  });

  it("bound to its config node and api key; a changed secret or a tampered file is never used", function () {
    store().save("b1", "apikey", TOKEN, SESSION);
    assert.equal(store().load("b2", "apikey", ""), undefined, "another config node has no file");
    assert.deepEqual(store().load("b1", "otherkey", ""), { discarded: "other-api-key" });

    store().save("b1", "apikey", TOKEN, SESSION);
    assert.deepEqual(store("another-secret").load("b1", "apikey", ""), { discarded: "unreadable" });

    store().save("b1", "apikey", TOKEN, SESSION);
    const file = store().fileOf("b1");
    // Moving the day forward by hand does not make yesterday's token today's: the day is sealed in.
    now = ist("2026-12-05T09:00:00");
    const sealed = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, string>;
    fs.writeFileSync(file, JSON.stringify({ ...sealed, day: "2026-12-05" }));
    assert.deepEqual(store().load("b1", "apikey", ""), { discarded: "unreadable" });
    assert.equal(fs.existsSync(file), false);

    for (const garbage of ["", "{", "null", '{"v":2}', "x".repeat(10_000)]) {
      fs.writeFileSync(file, garbage);
      assert.deepEqual(store().load("b1", "apikey", ""), { discarded: "unreadable" });
    }
  });

  it("a token typed into the credentials after the login wins over the kept one", function () {
    store().save("b1", "apikey", TOKEN, SESSION, "old-credential");
    assert.equal(
      (store().load("b1", "apikey", "old-credential") as { accessToken: string }).accessToken,
      TOKEN,
    );
    // Deployed after the login: the credential now holds the login's own token.
    assert.equal((store().load("b1", "apikey", TOKEN) as { accessToken: string }).accessToken, TOKEN);
    assert.deepEqual(store().load("b1", "apikey", "typed-later"), { discarded: "newer-credential" });
  });

  it("without a runtime secret: a key file of its own (0600), shared by every restart", function () {
    store(null).save("b1", "apikey", TOKEN, SESSION);
    const keyFile = path.join(dir, "kite-session.key");
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.equal((store(null).load("b1", "apikey", "") as { accessToken: string }).accessToken, TOKEN);
    fs.rmSync(keyFile);
    assert.deepEqual(store(null).load("b1", "apikey", ""), { discarded: "unreadable" });
  });

  it("any config node id maps to a file inside its dir", function () {
    for (const id of ["../../etc/passwd", "a/b", ".hidden", "x".repeat(200), "ok.id_1"]) {
      const file = store().fileOf(id);
      assert.equal(path.dirname(file), dir, id);
      store().save(id, "apikey", TOKEN, SESSION);
      assert.equal((store().load(id, "apikey", "") as { accessToken: string }).accessToken, TOKEN);
    }
  });
});
