import { z } from "zod";
import { BrokerError } from "../protocol/errors";
import { ChargeSchedule, NO_CHARGES, ZERODHA_NSE_2026 } from "./charges";
import { InstrumentRules } from "./instruments";
import { deepFreeze } from "./freeze";
import { parseOrThrow } from "./issues";
import { LiquiditySettings } from "./liquidity";
import { MarginSettings } from "./margin";
import { CalendarSettings } from "./trading-calendar";
import { isRecord } from "../common/is-record";

export const ChargesSettings = z.strictObject({
  enabled: z.boolean().default(true),
  schedule: ChargeSchedule.default(ZERODHA_NSE_2026),
});

export const MarketPreset = z.enum(["relaxed", "nse"], { error: "must be relaxed or nse" });
export type MarketPreset = z.infer<typeof MarketPreset>;

/** The whole market model's settings, every section complete (what parseMarketSettings returns). */
export const MarketSettings = z.strictObject({
  preset: MarketPreset,
  calendar: CalendarSettings,
  instruments: InstrumentRules,
  charges: ChargesSettings,
  margin: MarginSettings,
  liquidity: LiquiditySettings,
});
export type MarketSettings = z.output<typeof MarketSettings>;

type Section = "calendar" | "instruments" | "charges" | "margin" | "liquidity";
const SECTIONS: readonly Section[] = ["calendar", "instruments", "charges", "margin", "liquidity"];

/**
 * The two starting points. `relaxed` is the paper broker as it was before this model: open round
 * the clock, any symbol at any price and quantity, no charges, cash-only funds, infinite
 * liquidity (the demo flow trades at night). `nse` is NSE as Kite sees it, with Zerodha's charges.
 */
export const PRESETS: Readonly<
  Record<MarketPreset, Readonly<Record<Section, Readonly<Record<string, unknown>>>>>
> = deepFreeze({
  relaxed: {
    calendar: { always_open: true },
    instruments: { enforce_tick: false, enforce_lot: false, enforce_band: false, allow_unknown: true },
    charges: { enabled: false, schedule: NO_CHARGES },
    margin: { model: "cash" },
    liquidity: { infinite: true },
  },
  nse: {
    calendar: {},
    instruments: {},
    charges: { enabled: true, schedule: ZERODHA_NSE_2026 },
    margin: { model: "kite" },
    liquidity: {},
  },
});

/** Objects merge key by key (so one rate can be edited); anything else, arrays too, replaces. */
function merge(base: unknown, override: unknown): unknown {
  if (!isRecord(base) || !isRecord(override)) return override === undefined ? base : override;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) out[key] = merge(base[key], value);
  return out;
}

/**
 * Settings as a user writes them: `{ preset: "nse", calendar: { extra_holidays: [...] },
 * charges: { schedule: { options: { brokerage_flat_paise: 1500 } } } }`. Each section is the
 * preset's, with the user's values merged over it, then validated; the first problem is a
 * CONFIG error naming its path ("market.calendar.open: must be a time written HH:MM ...").
 */
export function parseMarketSettings(input: unknown = {}): MarketSettings {
  if (!isRecord(input)) throw new BrokerError("CONFIG", "market: must be an object");
  const preset = MarketPreset.safeParse(input.preset ?? "relaxed");
  if (!preset.success) throw new BrokerError("CONFIG", `market.preset: ${preset.error.issues[0]!.message}`);
  const merged: Record<string, unknown> = { preset: preset.data };
  for (const key of Object.keys(input)) {
    if (key !== "preset" && !(SECTIONS as readonly string[]).includes(key)) {
      throw new BrokerError(
        "CONFIG",
        `market.${key}: is not a setting (known: preset, ${SECTIONS.join(", ")})`,
      );
    }
  }
  for (const section of SECTIONS) {
    const override = input[section];
    if (override !== undefined && !isRecord(override)) {
      throw new BrokerError("CONFIG", `market.${section}: must be an object`);
    }
    merged[section] = merge(PRESETS[preset.data][section], override ?? {});
  }
  return parseOrThrow(MarketSettings, merged, "CONFIG", "market");
}
