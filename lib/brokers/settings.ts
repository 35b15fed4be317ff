import { z } from "zod";
import { PaperSettings } from "../paper/settings";
import { KiteSettings } from "./kite-settings";
import { WebSocketSettings } from "./websocket-settings";

/** What a broker-config node holds, per broker kind. WebSocket and Kite kinds join this union. */
export const BrokerSettings = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("paper"), paper: PaperSettings }),
  z.strictObject({ kind: z.literal("websocket"), websocket: WebSocketSettings }),
  z.strictObject({ kind: z.literal("kite"), kite: KiteSettings }),
]);
export type BrokerSettingsInput = z.input<typeof BrokerSettings>;
export type BrokerSettings = z.output<typeof BrokerSettings>;
