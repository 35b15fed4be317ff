import assert from "node:assert/strict";
import { TickerFrameError, parsePacket, parseTickerFrame, priceDivisor } from "../../lib/kite/ticker-parser";
import { encodeFrame, encodePacket } from "../fakes/ticker-encoder";

/** Tokens: the low byte is the segment. */
const NSE_TOKEN = 408065; // 1594 << 8 | 1
const CDS_TOKEN = (5000 << 8) | 3;
const BCD_TOKEN = (5001 << 8) | 6;
const MCX_TOKEN = (5002 << 8) | 7;
const INDEX_TOKEN = 256265; // NIFTY 50, segment 9
const BIG_TOKEN = 0xfffffe01; // ≥ 2^31, NSE segment

/** Writes int32/uint32/uint16 values big-endian at byte offsets, independently of the fake's encoder. */
function packet(
  length: number,
  fields: [offset: number, value: number, kind?: "i32" | "u32" | "u16"][],
): Buffer {
  const buffer = Buffer.alloc(length);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  for (const [offset, value, kind = "i32"] of fields) {
    if (kind === "u32") view.setUint32(offset, value);
    else if (kind === "u16") view.setUint16(offset, value);
    else view.setInt32(offset, value);
  }
  return buffer;
}

function frame(...packets: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from([packets.length >> 8, packets.length & 0xff])];
  for (const p of packets) parts.push(Buffer.from([p.length >> 8, p.length & 0xff]), p);
  return Buffer.concat(parts);
}

describe("Kite ticker parser", function () {
  it("treats 1- and 2-byte frames as heartbeats", function () {
    assert.deepEqual(parseTickerFrame(Buffer.from([0])), []);
    assert.deepEqual(parseTickerFrame(Buffer.from([0, 0])), []);
  });

  it("divides prices by segment: NSE 100, CDS 1e7, BCD 1e4, others 100", function () {
    assert.equal(priceDivisor(NSE_TOKEN), 100);
    assert.equal(priceDivisor(CDS_TOKEN), 10_000_000);
    assert.equal(priceDivisor(BCD_TOKEN), 10_000);
    assert.equal(priceDivisor(MCX_TOKEN), 100);
    assert.equal(priceDivisor(INDEX_TOKEN), 100);
  });

  it("decodes LTP packets (8 bytes) per segment, negative prices and large tokens", function () {
    const ticks = parseTickerFrame(
      frame(
        packet(8, [
          [0, NSE_TOKEN, "u32"],
          [4, 150_025],
        ]),
        packet(8, [
          [0, CDS_TOKEN, "u32"],
          [4, 832_512_500],
        ]),
        packet(8, [
          [0, BCD_TOKEN, "u32"],
          [4, 832_525],
        ]),
        packet(8, [
          [0, MCX_TOKEN, "u32"],
          [4, -3_763],
        ]),
        packet(8, [
          [0, BIG_TOKEN, "u32"],
          [4, 100],
        ]),
      ),
    );
    assert.deepEqual(
      ticks.map((t) => [t.mode, t.instrument_token, t.last_price, t.tradable]),
      [
        ["ltp", NSE_TOKEN, 1500.25, true],
        ["ltp", CDS_TOKEN, 83.25125, true],
        ["ltp", BCD_TOKEN, 83.2525, true],
        ["ltp", MCX_TOKEN, -37.63, true],
        ["ltp", BIG_TOKEN, 1, true],
      ],
    );
  });

  it("decodes index quote (28) and index full (32) packets: high/low before open", function () {
    const quote = packet(28, [
      [0, INDEX_TOKEN, "u32"],
      [4, 2_250_050],
      [8, 2_260_000],
      [12, 2_240_000],
      [16, 2_245_000],
      [20, 2_200_000],
      [24, 50_050],
    ]);
    const full = Buffer.concat([quote, packet(4, [[0, 1_718_163_900, "u32"]])]);
    const [q, f] = parseTickerFrame(frame(quote, full));
    assert.deepEqual(q, {
      mode: "quote",
      instrument_token: INDEX_TOKEN,
      tradable: false,
      last_price: 22500.5,
      ohlc: { open: 22450, high: 22600, low: 22400, close: 22000 },
      change: ((22500.5 - 22000) * 100) / 22000,
    });
    assert.equal(f!.mode, "full");
    assert.equal(f!.exchange_timestamp, 1_718_163_900_000);
  });

  it("decodes quote packets (44) with quantities ≥ 2^31 read unsigned", function () {
    const p = packet(44, [
      [0, NSE_TOKEN, "u32"],
      [4, 150_000],
      [8, 25, "u32"],
      [12, 149_875],
      [16, 3_000_000_000, "u32"],
      [20, 2_147_483_648, "u32"],
      [24, 4_294_967_295, "u32"],
      [28, 148_000],
      [32, 151_000],
      [36, 147_500],
      [40, 0],
    ]);
    const [tick] = parseTickerFrame(frame(p));
    assert.deepEqual(tick, {
      mode: "quote",
      instrument_token: NSE_TOKEN,
      tradable: true,
      last_price: 1500,
      last_traded_quantity: 25,
      average_traded_price: 1498.75,
      volume_traded: 3_000_000_000,
      total_buy_quantity: 2_147_483_648,
      total_sell_quantity: 4_294_967_295,
      ohlc: { open: 1480, high: 1510, low: 1475, close: 0 },
      change: 0,
    });
  });

  it("decodes full packets (184) with depth, OI and times, on CDS", function () {
    const fields: [number, number, ("i32" | "u32" | "u16")?][] = [
      [0, CDS_TOKEN, "u32"],
      [4, 832_500_000],
      [28, 830_000_000],
      [32, 835_000_000],
      [36, 829_000_000],
      [40, 831_000_000],
      [44, 1_718_163_899, "u32"],
      [48, 120_000, "u32"],
      [52, 130_000, "u32"],
      [56, 110_000, "u32"],
      [60, 1_718_163_900, "u32"],
    ];
    for (let i = 0; i < 10; i++) {
      const at = 64 + i * 12;
      fields.push([at, 100 + i, "u32"], [at + 4, 832_400_000 + i * 25_000], [at + 8, i + 1, "u16"]);
    }
    const [tick] = parseTickerFrame(frame(packet(184, fields)));
    assert.equal(tick!.mode, "full");
    assert.equal(tick!.last_price, 83.25);
    assert.deepEqual(tick!.ohlc, { open: 83, high: 83.5, low: 82.9, close: 83.1 });
    assert.equal(tick!.last_trade_time, 1_718_163_899_000);
    assert.equal(tick!.exchange_timestamp, 1_718_163_900_000);
    assert.deepEqual([tick!.oi, tick!.oi_day_high, tick!.oi_day_low], [120_000, 130_000, 110_000]);
    assert.deepEqual(tick!.depth!.buy[0], { quantity: 100, price: 83.24, orders: 1 });
    assert.deepEqual(tick!.depth!.sell[4], { quantity: 109, price: 83.2625, orders: 10 });
    assert.equal(tick!.depth!.buy.length, 5);
    assert.equal(tick!.depth!.sell.length, 5);
  });

  it("skips packets of unknown length and refuses truncated frames", function () {
    const ltp = packet(8, [
      [0, NSE_TOKEN, "u32"],
      [4, 100],
    ]);
    const ticks = parseTickerFrame(frame(Buffer.alloc(12), ltp));
    assert.equal(ticks.length, 1);
    const cut = frame(ltp, ltp).subarray(0, 15);
    assert.throws(() => parseTickerFrame(cut), TickerFrameError);
    assert.throws(() => parseTickerFrame(Buffer.from([0, 2, 0, 8])), TickerFrameError);
    assert.equal(parsePacket(Buffer.alloc(9)), undefined);
  });

  it("reads back what the fake's encoder writes, in every mode", function () {
    for (const token of [NSE_TOKEN, CDS_TOKEN, BCD_TOKEN, INDEX_TOKEN]) {
      for (const mode of ["ltp", "quote", "full"] as const) {
        const price = token === CDS_TOKEN ? 83.2512 : 1234.55;
        const bytes = encodeFrame([
          encodePacket(
            {
              token,
              last_price: price,
              volume: 5,
              bids: [{ quantity: 1, price, orders: 1 }],
              exchange_timestamp: 1_700_000_000,
            },
            mode,
          ),
        ]);
        const [tick] = parseTickerFrame(bytes);
        assert.equal(tick!.instrument_token, token);
        assert.equal(tick!.last_price, price);
        assert.equal(tick!.mode, mode);
        if (mode === "full" && token !== INDEX_TOKEN) assert.equal(tick!.depth!.buy[0]!.price, price);
      }
    }
  });
});
