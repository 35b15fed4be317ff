import type { KiteBrokerDeps } from "../../lib/brokers/kite-broker";
import { KiteBroker } from "../../lib/brokers/kite-broker";
import type { KiteSettingsInput } from "../../lib/brokers/kite-settings";
import { KiteSettings } from "../../lib/brokers/kite-settings";
import type { BrokerError, ConnectionState } from "../../lib/protocol";
import { EventLog } from "../contract/broker-contract";
import type { FakeKiteOptions } from "./fake-kite";
import { FakeKite } from "./fake-kite";

export interface KiteHarness {
  fake: FakeKite;
  broker: KiteBroker;
  log: EventLog;
  states: [ConnectionState, string | undefined][];
  errors: BrokerError[];
  close(): Promise<void>;
}

/** The settings that point a KiteBroker at `fake` (its key, token, REST root and ticker). */
export function fakeKiteSettings(
  fake: FakeKite,
): Pick<KiteSettingsInput, "api_key" | "access_token" | "root" | "ticker_url"> {
  return {
    api_key: fake.apiKey,
    access_token: fake.accessToken,
    root: fake.restUrl,
    ticker_url: fake.tickerUrl,
  };
}

/** A fake Kite and a KiteBroker pointed at it (not yet connected unless `connect`). */
export async function startKite(
  settings: Partial<KiteSettingsInput> = {},
  fakeOptions: FakeKiteOptions = {},
  connect = true,
  deps: KiteBrokerDeps = {},
): Promise<KiteHarness> {
  const fake = await FakeKite.start(fakeOptions);
  const broker = new KiteBroker(
    KiteSettings.parse({
      api_key: fake.apiKey,
      access_token: fake.accessToken,
      root: fake.restUrl,
      ticker_url: fake.tickerUrl,
      ...settings,
    }),
    deps,
  );
  const states: [ConnectionState, string | undefined][] = [];
  const errors: BrokerError[] = [];
  broker.on("state", (state, detail) => states.push([state, detail]));
  broker.on("error", (error) => errors.push(error));
  const log = new EventLog(broker);
  if (connect) await broker.connect();
  return {
    fake,
    broker,
    log,
    states,
    errors,
    close: async () => {
      log.detach();
      await broker.close();
      await fake.close();
    },
  };
}
