import { z } from "zod";
import { PaperSettings } from "../paper/settings";
import { RiskSettings } from "../risk/settings";
import { KiteSettings } from "./kite-settings";
import { WebSocketSettings } from "./websocket-settings";

/**
 * What a broker-config node holds, per broker kind, and the risk guard's limits (any kind; the
 * guard wraps every broker, and absent limits are not checked).
 */
export const BrokerSettings = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("paper"), paper: PaperSettings, risk: RiskSettings.optional() }),
  z.strictObject({
    kind: z.literal("websocket"),
    websocket: WebSocketSettings,
    risk: RiskSettings.optional(),
  }),
  z.strictObject({ kind: z.literal("kite"), kite: KiteSettings, risk: RiskSettings.optional() }),
]);
export type BrokerSettingsInput = z.input<typeof BrokerSettings>;
export type BrokerSettings = z.output<typeof BrokerSettings>;
