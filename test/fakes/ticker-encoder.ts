import type { TickMode } from "../../lib/kite/ticker-parser";
import { SEGMENT, priceDivisor, segmentOf } from "../../lib/kite/ticker-parser";

/** What the fake ticker knows about an instrument when it writes a packet. */
export interface TickSource {
  token: number;
  last_price: number;
  ohlc?: { open: number; high: number; low: number; close: number };
  last_traded_quantity?: number;
  average_traded_price?: number;
  volume?: number;
  total_buy_quantity?: number;
  total_sell_quantity?: number;
  /** Epoch seconds. */
  last_trade_time?: number;
  exchange_timestamp?: number;
  oi?: number;
  oi_day_high?: number;
  oi_day_low?: number;
  /** Five levels a side; missing levels are written as zeros. */
  bids?: { quantity: number; price: number; orders: number }[];
  asks?: { quantity: number; price: number; orders: number }[];
}

/** Writes one packet as Kite's ticker does (KITE.md §7): big-endian, prices × the segment's divisor. */
export function encodePacket(source: TickSource, mode: TickMode): Buffer {
  const divisor = priceDivisor(source.token);
  const price = (value: number): number => Math.round(value * divisor);
  const ohlc = source.ohlc ?? {
    open: source.last_price,
    high: source.last_price,
    low: source.last_price,
    close: source.last_price,
  };
  const index = segmentOf(source.token) === SEGMENT.INDICES;
  const length = mode === "ltp" ? 8 : index ? (mode === "full" ? 32 : 28) : mode === "full" ? 184 : 44;
  const buffer = Buffer.alloc(length);
  buffer.writeUInt32BE(source.token >>> 0, 0);
  buffer.writeInt32BE(price(source.last_price), 4);
  if (length === 8) return buffer;
  if (index) {
    buffer.writeInt32BE(price(ohlc.high), 8);
    buffer.writeInt32BE(price(ohlc.low), 12);
    buffer.writeInt32BE(price(ohlc.open), 16);
    buffer.writeInt32BE(price(ohlc.close), 20);
    buffer.writeInt32BE(price(source.last_price - ohlc.close), 24);
    if (length === 32) buffer.writeUInt32BE(source.exchange_timestamp ?? 0, 28);
    return buffer;
  }
  buffer.writeUInt32BE(source.last_traded_quantity ?? 0, 8);
  buffer.writeInt32BE(price(source.average_traded_price ?? source.last_price), 12);
  buffer.writeUInt32BE(source.volume ?? 0, 16);
  buffer.writeUInt32BE(source.total_buy_quantity ?? 0, 20);
  buffer.writeUInt32BE(source.total_sell_quantity ?? 0, 24);
  buffer.writeInt32BE(price(ohlc.open), 28);
  buffer.writeInt32BE(price(ohlc.high), 32);
  buffer.writeInt32BE(price(ohlc.low), 36);
  buffer.writeInt32BE(price(ohlc.close), 40);
  if (length === 44) return buffer;
  buffer.writeUInt32BE(source.last_trade_time ?? 0, 44);
  buffer.writeUInt32BE(source.oi ?? 0, 48);
  buffer.writeUInt32BE(source.oi_day_high ?? 0, 52);
  buffer.writeUInt32BE(source.oi_day_low ?? 0, 56);
  buffer.writeUInt32BE(source.exchange_timestamp ?? 0, 60);
  const levels = [...padLevels(source.bids), ...padLevels(source.asks)];
  levels.forEach((level, i) => {
    const at = 64 + i * 12;
    buffer.writeUInt32BE(level.quantity, at);
    buffer.writeInt32BE(price(level.price), at + 4);
    buffer.writeUInt16BE(level.orders, at + 8);
  });
  return buffer;
}

function padLevels(levels: TickSource["bids"]): { quantity: number; price: number; orders: number }[] {
  const out = (levels ?? []).slice(0, 5);
  while (out.length < 5) out.push({ quantity: 0, price: 0, orders: 0 });
  return out;
}

/** `[int16 count]` then `[int16 length][packet]` per packet. */
export function encodeFrame(packets: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(2);
  head.writeUInt16BE(packets.length, 0);
  parts.push(head);
  for (const packet of packets) {
    const size = Buffer.alloc(2);
    size.writeUInt16BE(packet.length, 0);
    parts.push(size, packet);
  }
  return Buffer.concat(parts);
}
