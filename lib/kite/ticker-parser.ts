/**
 * Kite ticker binary frames (KITE.md §7), big-endian:
 * `[int16 packet count]` then `[int16 length][packet]` per packet. A frame of one or two bytes is
 * a heartbeat. Packet layouts by length: 8 LTP; 28 index quote, 32 index full; 44 quote, 184 full
 * (with five levels of depth a side).
 *
 * Unlike kiteconnect's decoder (signed for every field, so values of 2^31 and more come out
 * negative), tokens, quantities, volumes, open interest and times are read unsigned, and prices
 * signed (a price can go below zero, as crude oil futures did in 2020).
 */

export type TickMode = "ltp" | "quote" | "full";

/** The low byte of an instrument token names its segment. */
export const SEGMENT = {
  NSE: 1,
  NFO: 2,
  CDS: 3,
  BSE: 4,
  BFO: 5,
  BCD: 6,
  MCX: 7,
  MCXSX: 8,
  INDICES: 9,
} as const;

export function segmentOf(token: number): number {
  return token & 0xff;
}

/** Prices travel as integers: paise (÷100), except currency derivatives (NSE CDS ÷1e7, BSE BCD ÷1e4). */
export function priceDivisor(token: number): number {
  const segment = segmentOf(token);
  if (segment === SEGMENT.CDS) return 10_000_000;
  if (segment === SEGMENT.BCD) return 10_000;
  return 100;
}

export interface DepthLevel {
  quantity: number;
  price: number;
  orders: number;
}

export interface Ohlc {
  open: number;
  high: number;
  low: number;
  close: number;
}

/** One decoded packet; fields beyond last_price are present when the mode carries them. */
export interface Tick {
  mode: TickMode;
  instrument_token: number;
  /** Indices (segment 9) cannot be traded. */
  tradable: boolean;
  last_price: number;
  last_traded_quantity?: number;
  average_traded_price?: number;
  volume_traded?: number;
  total_buy_quantity?: number;
  total_sell_quantity?: number;
  ohlc?: Ohlc;
  /** Percent change of last_price against the previous close (0 when the close is 0). */
  change?: number;
  /** Epoch ms; absent when the packet carries 0. */
  last_trade_time?: number;
  exchange_timestamp?: number;
  oi?: number;
  oi_day_high?: number;
  oi_day_low?: number;
  depth?: { buy: DepthLevel[]; sell: DepthLevel[] };
}

export class TickerFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TickerFrameError";
  }
}

/** True for Kite's 1-byte heartbeat (any frame of at most 2 bytes carries no packet). */
export function isHeartbeat(frame: Uint8Array): boolean {
  return frame.byteLength <= 2;
}

function change(last: number, close: number): number {
  return close !== 0 ? ((last - close) * 100) / close : 0;
}

function seconds(value: number): number | undefined {
  return value === 0 ? undefined : value * 1000;
}

/** Decodes one packet; undefined for a length this decoder does not know (skipped, not fatal). */
export function parsePacket(packet: Uint8Array): Tick | undefined {
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const length = packet.byteLength;
  if (length !== 8 && length !== 28 && length !== 32 && length !== 44 && length !== 184) return undefined;
  const token = view.getUint32(0);
  const divisor = priceDivisor(token);
  const price = (offset: number): number => view.getInt32(offset) / divisor;
  const u32 = (offset: number): number => view.getUint32(offset);
  const base = {
    instrument_token: token,
    tradable: segmentOf(token) !== SEGMENT.INDICES,
    last_price: price(4),
  };
  if (length === 8) return { mode: "ltp", ...base };
  if (length === 28 || length === 32) {
    // Index packets: high before low, open after them.
    const ohlc: Ohlc = { open: price(16), high: price(8), low: price(12), close: price(20) };
    const tick: Tick = {
      mode: length === 32 ? "full" : "quote",
      ...base,
      ohlc,
      change: change(base.last_price, ohlc.close),
    };
    if (length === 32) {
      const ts = seconds(u32(28));
      if (ts !== undefined) tick.exchange_timestamp = ts;
    }
    return tick;
  }
  const ohlc: Ohlc = { open: price(28), high: price(32), low: price(36), close: price(40) };
  const tick: Tick = {
    mode: length === 184 ? "full" : "quote",
    ...base,
    last_traded_quantity: u32(8),
    average_traded_price: price(12),
    volume_traded: u32(16),
    total_buy_quantity: u32(20),
    total_sell_quantity: u32(24),
    ohlc,
    change: change(base.last_price, ohlc.close),
  };
  if (length === 184) {
    const lastTrade = seconds(u32(44));
    if (lastTrade !== undefined) tick.last_trade_time = lastTrade;
    tick.oi = u32(48);
    tick.oi_day_high = u32(52);
    tick.oi_day_low = u32(56);
    const ts = seconds(u32(60));
    if (ts !== undefined) tick.exchange_timestamp = ts;
    const buy: DepthLevel[] = [];
    const sell: DepthLevel[] = [];
    for (let i = 0; i < 10; i++) {
      const at = 64 + i * 12;
      (i < 5 ? buy : sell).push({ quantity: u32(at), price: price(at + 4), orders: view.getUint16(at + 8) });
    }
    tick.depth = { buy, sell };
  }
  return tick;
}

/**
 * Decodes a binary frame into ticks. A heartbeat gives []. A frame whose declared packets run past
 * its end throws TickerFrameError (the packets before the break are lost with it: a truncated
 * frame cannot be trusted).
 */
export function parseTickerFrame(frame: Uint8Array): Tick[] {
  if (isHeartbeat(frame)) return [];
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const count = view.getUint16(0);
  const ticks: Tick[] = [];
  let at = 2;
  for (let i = 0; i < count; i++) {
    if (at + 2 > frame.byteLength) {
      throw new TickerFrameError(
        `ticker frame ends after ${i} of ${count} packets (${frame.byteLength} bytes)`,
      );
    }
    const size = view.getUint16(at);
    at += 2;
    if (at + size > frame.byteLength) {
      throw new TickerFrameError(
        `ticker packet ${i + 1} of ${count} declares ${size} bytes but the frame has ${frame.byteLength - at} left`,
      );
    }
    const tick = parsePacket(frame.subarray(at, at + size));
    if (tick !== undefined) ticks.push(tick);
    at += size;
  }
  return ticks;
}
