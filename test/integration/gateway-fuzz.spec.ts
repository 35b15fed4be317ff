// A protocol fuzzer with its own oracle, against a real gateway over paper: random valid and invalid
// frames of every request type (boundary sizes, wrong types, duplicate and in-flight ids, batches,
// frames refused whole), pipelined a few at a time. The oracle: every message gets exactly one
// answer carrying its id (or null when it has none readable), a RESULT matches its type's result
// schema, an ERROR carries a protocol code and never INTERNAL, a retried client_order_id names the
// original order, no frame is unbounded, the gateway logs no error, no socket error goes unheard
// and no rejection unhandled; and a well-behaved client keeps being served throughout.
// Seeded: FUZZ_SEED=<n> repeats a run; every failure names its seed.
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import WebSocket from "ws";
import { seededRandom } from "../../lib/paper/random";
import { ERROR_CODES } from "../../lib/protocol/errors";
import type { RequestType } from "../../lib/protocol/wire";
import { RESULT_SCHEMAS } from "../../lib/protocol/wire";
import { FaultHooks } from "../support/fault-hooks";
import type { FuzzFrame, FuzzMemory } from "../support/fuzz-frames";
import { FrameFuzzer, newFuzzMemory } from "../support/fuzz-frames";
import type { PaperGateway, Received } from "../support/gateway-client";
import {
  GatewayClient,
  newNonce,
  order,
  sign,
  startPaperGateway,
  TEST_KEY,
  TEST_SECRET,
} from "../support/gateway-client";

const CODES: ReadonlySet<string> = new Set(ERROR_CODES);
const MAX_ANSWER_FRAME = 64 * 1024;
/** No single answer the fuzzer can provoke (a 1000-order page is ~400 KB) should come near this. */
const MAX_SINGLE_MESSAGE = 2 * 1024 * 1024;

function baseSeed(): number {
  const fromEnv = Number(process.env.FUZZ_SEED);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : 1 + Math.floor(Math.random() * 1e9);
}

/** A raw connection that records every answer and frame as received. */
class Recorder {
  readonly answers: Received[] = [];
  readonly frameSizes: { bytes: number; messages: number }[] = [];
  closed: { code: number; reason: string } | undefined;

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => {
      const text = data.toString("utf8");
      const parsed: unknown = JSON.parse(text);
      const messages = (Array.isArray(parsed) ? parsed : [parsed]) as Received[];
      this.frameSizes.push({ bytes: text.length, messages: messages.length });
      for (const message of messages)
        if (message.type === "RESULT" || message.type === "ERROR") this.answers.push(message);
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
    });
    ws.on("error", () => undefined);
  }
}

/** v1.0, or v1.1 with session options (deltas, answered events carried in answers). */
type Session = Record<string, string> | undefined;
const SESSIONS: readonly Session[] = [
  undefined,
  { event_format: "delta" },
  { answered_events: "skip" },
  { event_format: "delta", answered_events: "skip" },
];

async function openRecorder(url: string, options: Session = undefined): Promise<Recorder> {
  const ws = new WebSocket(
    url,
    options === undefined ? ["trading-broker.v1"] : ["trading-broker.v1.1", "trading-broker.v1"],
  );
  const recorder = new Recorder(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const timestamp = Date.now();
  const nonce = newNonce();
  ws.send(
    JSON.stringify({
      type: "AUTH",
      id: "auth",
      api_key: TEST_KEY,
      timestamp,
      nonce,
      signature: sign(TEST_SECRET, TEST_KEY, timestamp, nonce),
      ...(options === undefined ? {} : { options }),
    }),
  );
  await waitUntil(() => recorder.answers.length === 1, 3000, "the AUTH answer");
  assert.equal(recorder.answers[0]?.type, "RESULT", JSON.stringify(recorder.answers[0]));
  recorder.answers.length = 0;
  return recorder;
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function multiset(ids: readonly (string | null)[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(String(id), (counts.get(String(id)) ?? 0) + 1);
  return counts;
}

/** What a group of frames' answers teach the fuzzer about the account, and the oracle's checks. */
function checkAnswers(
  where: string,
  group: readonly FuzzFrame[],
  answers: readonly Received[],
  memory: FuzzMemory,
  placedWith: Map<string, Record<string, unknown>>,
): void {
  const owed = group.flatMap((frame) => frame.owed);
  assert.deepEqual(
    multiset(answers.map((answer) => answer.id ?? null)),
    multiset(owed),
    `${where}: each message answered exactly once\nsent: ${group.map((f) => f.text.slice(0, 400)).join("\n")}\nanswers: ${JSON.stringify(answers).slice(0, 3000)}`,
  );
  const idCounts = multiset(owed);
  const types = new Map<string, string>();
  const sent = new Map<string, Record<string, unknown>>();
  for (const frame of group) {
    for (const [id, type] of frame.types) types.set(id, type);
    for (const message of frame.messages) {
      const record = message as Record<string, unknown> | null;
      if (record !== null && typeof record === "object" && typeof record.id === "string")
        sent.set(record.id, record);
    }
  }
  for (const answer of answers) {
    if (answer.type === "ERROR") {
      assert.ok(CODES.has(answer.error?.code ?? ""), `${where}: a protocol code: ${JSON.stringify(answer)}`);
      assert.notEqual(
        answer.error?.code,
        "INTERNAL",
        `${where}: no gateway fault: ${JSON.stringify(answer)}`,
      );
      assert.ok((answer.error?.message.length ?? 0) > 0, `${where}: a message: ${JSON.stringify(answer)}`);
      continue;
    }
    const id = answer.id ?? "";
    if (idCounts.get(id) !== 1) continue; // a duplicate id: which request it answers is not ours to say
    const type = types.get(id) as RequestType | undefined;
    assert.ok(
      type !== undefined,
      `${where}: a RESULT answers a request of a known type: ${JSON.stringify(answer)}`,
    );
    const checked = RESULT_SCHEMAS[type].safeParse(answer.result);
    assert.ok(
      checked.success,
      `${where}: ${type}'s RESULT matches its schema: ${JSON.stringify(answer).slice(0, 2000)}`,
    );
    const request = sent.get(id);
    const result = answer.result as Record<string, unknown>;
    if (type === "PLACE_ORDER" && request !== undefined) {
      const sentOrder = request.order as Record<string, unknown>;
      const clientId = String(sentOrder.client_order_id);
      const first = placedWith.get(clientId);
      if (first === undefined) {
        placedWith.set(clientId, { ...sentOrder, order_id: result.order_id });
        memory.clientIds.set(clientId, sentOrder);
        memory.orderIds.push(String(result.order_id));
      } else {
        assert.equal(
          result.order_id,
          first.order_id,
          `${where}: a retried client_order_id ${clientId} names its original order`,
        );
      }
    } else if (type === "PLACE_GTT") memory.gttIds.push(String(result.gtt_id));
    else if (type === "PING" || type === "RESUME") memory.seq = Number(result.seq);
  }
  for (const answer of answers) {
    if (answer.type !== "ERROR" || answer.error?.code !== "IDEMPOTENCY_MISMATCH") continue;
    const request = sent.get(answer.id ?? "");
    if (request === undefined || idCounts.get(answer.id ?? "") !== 1) continue;
    const sentOrder = request.order as Record<string, unknown>;
    const first = memory.clientIds.get(String(sentOrder.client_order_id));
    assert.ok(
      first === undefined || !isDeepStrictEqual(first, sentOrder),
      `${where}: the same order again is never a mismatch: ${JSON.stringify(sentOrder)}`,
    );
  }
}

describe("Gateway fuzzer: every frame answered exactly once, the gateway unharmed", function () {
  this.timeout(60_000);
  let paper: PaperGateway | undefined;
  let hooks: FaultHooks | undefined;
  const recorders: Recorder[] = [];
  const clients: GatewayClient[] = [];

  afterEach(async () => {
    for (const recorder of recorders.splice(0)) recorder.ws.terminate();
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await paper?.close();
    paper = undefined;
    hooks?.uninstall();
    hooks = undefined;
  });

  it("random frames of every type, pipelined, against one oracle (seeded)", async function () {
    const seed = baseSeed();
    console.log(`      gateway fuzz seed ${seed} (FUZZ_SEED=${seed} repeats it)`);
    hooks = new FaultHooks();
    hooks.install();
    paper = await startPaperGateway({
      rate: { perSecond: 1e6, burst: 1e6 },
      maxAnswerFrameBytes: MAX_ANSWER_FRAME,
      replayBuffer: 40,
      heartbeat: { intervalMs: 0, maxMissedPongs: 2 },
    });
    const random = seededRandom(seed);
    const memory = newFuzzMemory();
    const placedWith = new Map<string, Record<string, unknown>>();
    const fuzzer = new FrameFuzzer(random, memory, "f");
    let recorder = await openRecorder(paper.url, fuzzer.pick(SESSIONS));
    recorders.push(recorder);
    const good = await GatewayClient.open(paper.url);
    clients.push(good);
    let frames = 0;
    let reconnects = 0;
    const deadline = Date.now() + 6000;
    for (let group = 0; Date.now() < deadline; group++) {
      const where = `seed ${seed}, group ${group}`;
      const size = 1 + fuzzer.int(4);
      const sent: FuzzFrame[] = [];
      for (let i = 0; i < size; i++) {
        const frame = fuzzer.frame();
        sent.push(frame);
        recorder.ws.send(frame.binary === true ? Buffer.from(frame.text) : frame.text, {
          binary: frame.binary === true,
        });
      }
      frames += size;
      const owed = sent.reduce((sum, frame) => sum + frame.owed.length, 0);
      await waitUntil(
        () => recorder.answers.length >= owed || recorder.closed !== undefined,
        5000,
        `${where}: ${owed} answers (got ${recorder.answers.length}) to ${sent.map((f) => f.text.slice(0, 200)).join(" | ")}`,
      );
      // Anything more that would arrive arrives within a few turns.
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(
        recorder.closed,
        undefined,
        `${where}: the gateway kept the connection: ${JSON.stringify(recorder.closed)}`,
      );
      checkAnswers(where, sent, recorder.answers.splice(0), memory, placedWith);
      for (const { bytes, messages } of recorder.frameSizes.splice(0)) {
        if (messages > 1) assert.ok(bytes <= MAX_ANSWER_FRAME, `${where}: an array frame of ${bytes} bytes`);
        else assert.ok(bytes <= MAX_SINGLE_MESSAGE, `${where}: a frame of ${bytes} bytes`);
      }
      if (group % 7 === 0) {
        const reply = await good.request({ type: "PLACE_ORDER", order: order() });
        assert.equal(
          reply.type,
          "RESULT",
          `${where}: the well-behaved client is served: ${JSON.stringify(reply)}`,
        );
      }
      if (fuzzer.chance(0.05)) {
        // A new connection now and then: RESUME from old seqs against a buffer the fuzz has overrun.
        recorder.ws.close();
        recorder = await openRecorder(paper.url, fuzzer.pick(SESSIONS));
        recorders.push(recorder);
        reconnects++;
      }
    }
    const ping = await good.request({ type: "PING" });
    assert.equal(ping.type, "RESULT");
    assert.deepEqual(hooks.faults, [], `seed ${seed}: no unheard socket error, no unhandled rejection`);
    const errors = paper.logs.filter((line) => line.level === "error");
    assert.deepEqual(errors, [], `seed ${seed}: the gateway logged no error`);
    console.log(
      `      ${frames} frames, ${memory.orderIds.length} orders, ${memory.gttIds.length} GTTs, seq ${paper.gateway.seq}, ${reconnects} reconnects`,
    );
    assert.ok(memory.orderIds.length > 10, "the fuzz placed orders (not only refusals)");
  });

  it("AUTH attacks: replays, stale and future stamps, bad fields, frames before and around it (seeded)", async function () {
    const seed = baseSeed();
    console.log(`      auth fuzz seed ${seed}`);
    hooks = new FaultHooks();
    hooks.install();
    paper = await startPaperGateway({
      heartbeat: { intervalMs: 0, maxMissedPongs: 2 },
      maxUnauthenticatedClosesPerIp: 0,
    });
    const random = seededRandom(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const captured: string[] = [];
    const tally = new Map<string, number>();
    for (let round = 0; round < 60; round++) {
      const where = `seed ${seed}, round ${round}`;
      const ws: WebSocket = new WebSocket(paper.url, ["trading-broker.v1"]);
      const recorder: Recorder = new Recorder(ws);
      recorders.push(recorder);
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      const now = Date.now();
      const signed = (
        fields: { timestamp?: number; nonce?: string; secret?: string; id?: string } = {},
      ): Record<string, unknown> => {
        const timestamp = fields.timestamp ?? now;
        const nonce = fields.nonce ?? newNonce();
        return {
          type: "AUTH",
          id: fields.id ?? "a",
          api_key: TEST_KEY,
          timestamp,
          nonce,
          signature: sign(fields.secret ?? TEST_SECRET, TEST_KEY, timestamp, nonce),
        };
      };
      const kind = pick([
        "valid",
        "replay",
        "stale",
        "future",
        "before-start",
        "wrong-secret",
        "short-nonce",
        "upper-hex",
        "batch-valid-then-ping",
        "batch-bad-then-ping",
        "ping-first",
        "five-frames",
        "double-auth-batch",
      ]);
      tally.set(kind, (tally.get(kind) ?? 0) + 1);
      // Expected: the answers' codes in order ("RESULT" for a result), and the close code or none.
      let expect: { codes: string[]; close?: number };
      switch (kind) {
        case "valid": {
          const text = JSON.stringify(signed());
          captured.push(text);
          ws.send(text);
          expect = { codes: ["RESULT"] };
          break;
        }
        case "replay":
          if (captured.length === 0) {
            ws.send(JSON.stringify(signed({ timestamp: now - 31_000 })));
            expect = { codes: ["AUTH"], close: 4001 };
          } else {
            ws.send(pick(captured));
            expect = { codes: ["AUTH"], close: 4001 };
          }
          break;
        case "stale":
          ws.send(JSON.stringify(signed({ timestamp: now - 30_500 })));
          expect = { codes: ["AUTH"], close: 4001 };
          break;
        case "future":
          ws.send(JSON.stringify(signed({ timestamp: now + 30_500 })));
          expect = { codes: ["AUTH"], close: 4001 };
          break;
        case "before-start":
          ws.send(JSON.stringify(signed({ timestamp: now - 25_000 })));
          // Within the window but signed before this gateway started (it started < 25 s ago).
          expect = { codes: ["AUTH_RETRY"], close: 1013 };
          break;
        case "wrong-secret":
          ws.send(JSON.stringify(signed({ secret: "not-the-secret" })));
          expect = { codes: ["AUTH"], close: 4001 };
          break;
        case "short-nonce":
          ws.send(JSON.stringify(signed({ nonce: "abcdefghijklmno" })));
          expect = { codes: ["VALIDATION"] };
          break;
        case "upper-hex": {
          const message = signed();
          message.signature = String(message.signature).toUpperCase();
          ws.send(JSON.stringify(message));
          expect = { codes: ["VALIDATION"] };
          break;
        }
        case "batch-valid-then-ping":
          ws.send(JSON.stringify([signed(), { type: "PING", id: "p" }]));
          expect = { codes: ["RESULT", "RESULT"] };
          break;
        case "batch-bad-then-ping":
          ws.send(JSON.stringify([signed({ secret: "nope" }), { type: "PING", id: "p" }]));
          expect = { codes: ["AUTH", "UNAUTHENTICATED"], close: 4001 };
          break;
        case "ping-first":
          ws.send(JSON.stringify({ type: "PING", id: "p" }));
          ws.send(JSON.stringify(signed()));
          expect = { codes: ["UNAUTHENTICATED", "RESULT"] };
          break;
        case "five-frames":
          for (let i = 0; i < 5; i++) ws.send(JSON.stringify({ type: "PING", id: `p${i}` }));
          expect = {
            codes: ["UNAUTHENTICATED", "UNAUTHENTICATED", "UNAUTHENTICATED", "UNAUTHENTICATED"],
            close: 1008,
          };
          break;
        default:
          ws.send(JSON.stringify([signed({ id: "a1" }), signed({ id: "a2" })]));
          expect = { codes: ["RESULT", "VALIDATION"] };
          break;
      }
      if (expect.close === undefined) {
        await waitUntil(
          () => recorder.answers.length >= expect.codes.length || recorder.closed !== undefined,
          3000,
          `${where} ${kind}: answers`,
        );
        // And nothing more: a PING now is answered, the connection is alive.
        const authenticated = expect.codes.includes("RESULT");
        ws.send(JSON.stringify({ type: "PING", id: "after" }));
        await waitUntil(
          () => recorder.answers.length >= expect.codes.length + 1 || recorder.closed !== undefined,
          3000,
          `${where} ${kind}: the PING after`,
        );
        const last: Received | undefined = recorder.answers[expect.codes.length];
        assert.equal(
          last?.type === "RESULT" ? "RESULT" : last?.error?.code,
          authenticated ? "RESULT" : "UNAUTHENTICATED",
          `${where} ${kind}`,
        );
      } else {
        await waitUntil(() => recorder.closed !== undefined, 3000, `${where} ${kind}: the close`);
        assert.equal(recorder.closed?.code, expect.close, `${where} ${kind}: close code`);
      }
      const codes = recorder.answers
        .slice(0, expect.codes.length)
        .map((a: Received) => (a.type === "RESULT" ? "RESULT" : (a.error?.code ?? "?")));
      assert.deepEqual(codes, expect.codes, `${where} ${kind}: ${JSON.stringify(recorder.answers)}`);
      assert.equal(
        recorder.answers.length,
        expect.codes.length + (expect.close === undefined ? 1 : 0),
        `${where} ${kind}: no answer more: ${JSON.stringify(recorder.answers)}`,
      );
      ws.terminate();
    }
    const good = await GatewayClient.open(paper.url);
    clients.push(good);
    assert.equal((await good.request({ type: "PING" })).type, "RESULT");
    assert.deepEqual(hooks.faults, [], `seed ${seed}: no unheard socket error, no unhandled rejection`);
    assert.deepEqual(
      paper.logs.filter((line) => line.level === "error"),
      [],
    );
    console.log(`      ${JSON.stringify(Object.fromEntries(tally))}`);
  });
});
