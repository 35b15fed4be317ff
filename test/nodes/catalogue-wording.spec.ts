// What the editor and the runtime say to a user comes from the en-US catalogues: the config node
// is named as its label reads ("trading broker"), never by its type name "trading-broker", so a
// status, a log line and the dialog speak of the same thing.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

const NODES = path.resolve(__dirname, "..", "..", "..", "nodes");

/** Every text of a catalogue, with the key path it sits under. */
function texts(value: unknown, at: string): [string, string][] {
  if (typeof value === "string") return [[at, value]];
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([key, inner]) => texts(inner, at === "" ? key : `${at}.${key}`));
}

describe("en-US catalogues", function () {
  const catalogues = fs
    .readdirSync(NODES)
    .map((dir) => path.join(NODES, dir, "locales", "en-US", `${dir}.json`))
    .filter((file) => fs.existsSync(file));

  it("exist for every node", function () {
    assert.equal(catalogues.length, 11);
  });

  it('name the config node "trading broker", as its label reads, not by its type', function () {
    const typeName = catalogues.flatMap((file) =>
      texts(JSON.parse(fs.readFileSync(file, "utf8")), "")
        .filter(([, text]) => /\btrading-broker config\b/.test(text))
        .map(([key, text]) => `${path.basename(file)} ${key}: ${text}`),
    );
    assert.deepEqual(typeName, []);
  });
});
