import type { z } from "zod";
import { deepFreeze } from "./freeze";
import type { InstrumentSpec } from "./instruments";

type SpecInput = z.input<typeof InstrumentSpec>;

/**
 * A small built-in NSE list so the paper broker trades like NSE without a Kite session. Figures
 * as of 2026-12 and meant as examples: when a Kite session exists its instrument list is the
 * authority (instrumentFromKiteRow), and users add their own in the settings.
 *
 * - Equities: tick ₹0.05, lot 1. These five are in the F&O segment, so NSE gives them no fixed
 *   circuit but a dynamic band that starts at ±10% of the previous close; band_pct 10 models that
 *   start (the exchange widens it in steps during the day, which this model does not).
 * - Index derivatives: lot sizes from NSE's revision effective with the January 2026 contracts
 *   (NIFTY 65, BANKNIFTY 30); monthly contracts expire on the last Tuesday of the month (NSE moved
 *   expiries to Tuesday in September 2025). Derivatives have operating ranges, not fixed circuits,
 *   so no band_pct.
 * - Indices are quoted but not tradable.
 */
export const NSE_INSTRUMENTS: readonly SpecInput[] = deepFreeze([
  ...["INFY", "TCS", "RELIANCE", "HDFCBANK", "SBIN"].map((symbol): SpecInput => ({
    exchange: "NSE",
    symbol,
    segment: "EQ",
    tick_size: 0.05,
    lot_size: 1,
    band_pct: 10,
  })),
  { exchange: "NSE", symbol: "NIFTY 50", segment: "INDEX", tick_size: 0.05 },
  { exchange: "NSE", symbol: "NIFTY BANK", segment: "INDEX", tick_size: 0.05 },
  {
    exchange: "NFO",
    symbol: "NIFTY26DECFUT",
    segment: "FUT",
    tick_size: 0.05,
    lot_size: 65,
    expiry: "2026-12-29",
    underlying: "NIFTY",
  },
  {
    exchange: "NFO",
    symbol: "BANKNIFTY26DECFUT",
    segment: "FUT",
    tick_size: 0.05,
    lot_size: 30,
    expiry: "2026-12-29",
    underlying: "BANKNIFTY",
  },
  ...(["CE", "PE"] as const).map((option_type): SpecInput => ({
    exchange: "NFO",
    symbol: `NIFTY26DEC26000${option_type}`,
    segment: "OPT",
    tick_size: 0.05,
    lot_size: 65,
    expiry: "2026-12-29",
    strike: 26000,
    option_type,
    underlying: "NIFTY",
  })),
]);
