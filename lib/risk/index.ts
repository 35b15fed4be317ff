export * from "./guard";
export * from "./settings";
export * from "./state-file";
export * from "./trading-day";
