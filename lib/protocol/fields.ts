import { z } from "zod";

/**
 * Field builders with messages a trader can act on: "is required", "must be a positive integer",
 * never zod's generic wording. Every order, GTT and wire schema is built from these.
 */
function requiredOr(rule: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? "is required" : rule);
}

export const Exchange = z.enum(["NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX"], {
  error: requiredOr("must be one of NSE, BSE, NFO, BFO, CDS, BCD, MCX"),
});
export type Exchange = z.infer<typeof Exchange>;

export const Side = z.enum(["BUY", "SELL"], { error: requiredOr("must be BUY or SELL") });
export type Side = z.infer<typeof Side>;

export const OrderType = z.enum(["MARKET", "LIMIT", "SL", "SL-M"], {
  error: requiredOr("must be one of MARKET, LIMIT, SL, SL-M"),
});
export type OrderType = z.infer<typeof OrderType>;

export const Product = z.enum(["CNC", "MIS", "NRML"], { error: requiredOr("must be one of CNC, MIS, NRML") });
export type Product = z.infer<typeof Product>;

export const Validity = z.enum(["DAY", "IOC"], { error: requiredOr("must be DAY or IOC") });
export type Validity = z.infer<typeof Validity>;

export const Variety = z.enum(["regular", "amo", "iceberg"], {
  error: requiredOr("must be one of regular, amo, iceberg"),
});
export type Variety = z.infer<typeof Variety>;

export const Symbol = z
  .string({ error: requiredOr("must be a string") })
  .trim()
  .min(1, { error: "must not be empty" })
  .max(64, { error: "must be at most 64 characters" })
  // Single spaces between words let index names through ("NSE:NIFTY 50", "NSE:INDIA VIX").
  .regex(/^[A-Za-z0-9&_.:-]+(?: [A-Za-z0-9&_.:-]+)*$/, {
    error: "must contain only letters, digits, & _ . : - and single spaces between words",
  });

export const Quantity = z
  .number({ error: requiredOr("must be a number") })
  .int({ error: "must be a whole number" })
  .positive({ error: "must be greater than 0" })
  .max(10_000_000, { error: "must be at most 10000000" });

export const Price = z
  .number({ error: requiredOr("must be a number") })
  .positive({ error: "must be greater than 0" })
  .max(1e12, { error: "must be at most 1e12" });

/** Kite carries our client_order_id in its `tag` (20 alphanumeric characters), so ids fit that. */
export const ClientOrderId = z
  .string({ error: requiredOr("must be a string") })
  .regex(/^[A-Za-z0-9]{1,20}$/, { error: "must be 1 to 20 letters or digits" });

export const Tag = z
  .string({ error: requiredOr("must be a string") })
  .regex(/^[A-Za-z0-9]{1,20}$/, { error: "must be 1 to 20 letters or digits" });

export const OrderId = z
  .string({ error: requiredOr("must be a string") })
  .min(1, { error: "must not be empty" })
  .max(64, { error: "must be at most 64 characters" });

export const IsoTimestamp = z.iso.datetime({ error: "must be an ISO 8601 UTC timestamp" });
