import { z } from "zod";
import type { Exchange, OrderType, Validity, Variety } from "./fields";

/**
 * Kite's optional order parameters beyond the basic shape: TTL validity, disclosed quantity and
 * iceberg legs, with the rules Kite and the exchanges apply to them (docs/PROTOCOL.md §7), so an order that
 * Kite would refuse is refused here first, with a message naming the field and the rule.
 */
function requiredOr(rule: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? "is required" : rule);
}

function wholeNumber(min: number, max: number) {
  return z
    .number({ error: requiredOr("must be a number") })
    .int({ error: "must be a whole number" })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });
}

/** Minutes a TTL order lives; Kite takes 1 to 365. */
export const TTL_MINUTES = { min: 1, max: 365 } as const;
export const ValidityTtl = wholeNumber(TTL_MINUTES.min, TTL_MINUTES.max);

/** Kite's iceberg orders have 2 to 50 legs (raised from 20 to 50 in 2025). */
export const ICEBERG_LEGS = { min: 2, max: 50 } as const;
export const IcebergLegs = wholeNumber(ICEBERG_LEGS.min, ICEBERG_LEGS.max);

export const IcebergQuantity = wholeNumber(1, 10_000_000);
export const DisclosedQuantity = wholeNumber(1, 10_000_000);

/**
 * The smallest share of the order a disclosed quantity may show, per exchange (the exchanges'
 * order conditions: 10 % on equity and currency, 25 % on MCX); F&O takes none at all.
 */
const DISCLOSED_SHARE: Readonly<Record<Exchange, number | undefined>> = {
  NSE: 10,
  BSE: 10,
  CDS: 10,
  BCD: 10,
  MCX: 25,
  NFO: undefined,
  BFO: undefined,
};

export interface OrderOptions {
  variety?: Variety | undefined;
  validity_ttl?: number | undefined;
  disclosed_quantity?: number | undefined;
  iceberg_legs?: number | undefined;
  iceberg_quantity?: number | undefined;
}

/** The option fields, in the order requests and snapshots carry them. */
export const ORDER_OPTION_KEYS = [
  "variety",
  "validity_ttl",
  "disclosed_quantity",
  "iceberg_legs",
  "iceberg_quantity",
] as const;

/** The cross-field rules of the options, for a whole order (defaults applied). */
export function checkOrderOptions(
  value: OrderOptions & {
    exchange?: Exchange | undefined;
    quantity?: number | undefined;
    order_type?: OrderType | undefined;
    validity?: Validity | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
  const { quantity, exchange } = value;
  if (value.validity === "TTL" && value.validity_ttl === undefined) {
    issue(
      "validity_ttl",
      `is required when validity is TTL (minutes, ${TTL_MINUTES.min} to ${TTL_MINUTES.max})`,
    );
  }
  if (value.validity !== "TTL" && value.validity_ttl !== undefined) {
    issue("validity_ttl", "must not be set unless validity is TTL");
  }

  const legs = value.iceberg_legs;
  const legQuantity = value.iceberg_quantity;
  if (value.variety === "iceberg") {
    if (legs === undefined) issue("iceberg_legs", "is required for iceberg orders");
    if (legQuantity === undefined) issue("iceberg_quantity", "is required for iceberg orders");
    if (legs !== undefined && legQuantity !== undefined && quantity !== undefined) {
      if (legs * legQuantity < quantity) {
        issue(
          "iceberg_quantity",
          `must cover quantity over iceberg_legs legs (${legs} legs of ${legQuantity} = ${legs * legQuantity} < ${quantity})`,
        );
      } else if ((legs - 1) * legQuantity >= quantity) {
        issue(
          "iceberg_legs",
          `must not leave an empty leg (${legs - 1} legs of ${legQuantity} already make ${quantity})`,
        );
      }
    }
    if (exchange === "BSE" && (value.order_type === "MARKET" || value.order_type === "SL-M")) {
      issue("order_type", "must be LIMIT or SL for iceberg orders on BSE");
    }
  } else {
    if (legs !== undefined) issue("iceberg_legs", "must not be set unless variety is iceberg");
    if (legQuantity !== undefined) issue("iceberg_quantity", "must not be set unless variety is iceberg");
  }

  const disclosed = value.disclosed_quantity;
  if (disclosed !== undefined) {
    if (quantity !== undefined && disclosed > quantity) {
      issue("disclosed_quantity", `must be at most quantity (${quantity})`);
    }
    if (exchange !== undefined) {
      const share = DISCLOSED_SHARE[exchange];
      if (share === undefined) {
        issue("disclosed_quantity", `is not allowed on ${exchange} (F&O): use an iceberg order instead`);
      } else if (quantity !== undefined && disclosed * 100 < quantity * share) {
        issue(
          "disclosed_quantity",
          `must be at least ${share}% of quantity on ${exchange} (${Math.ceil((quantity * share) / 100)} of ${quantity})`,
        );
      }
    }
    if (value.validity === "IOC") {
      issue("disclosed_quantity", "must not be set for IOC orders (the exchanges refuse it)");
    }
  }
}

/** What a modification may change among the options: Kite's modify takes disclosed_quantity only. */
export function checkChangedOptions(value: { validity?: Validity | undefined }, ctx: z.RefinementCtx): void {
  if (value.validity === "TTL") {
    ctx.addIssue({
      code: "custom",
      path: ["validity"],
      message: "cannot be changed to TTL (Kite's modify takes no validity_ttl); place a new TTL order",
    });
  }
}
