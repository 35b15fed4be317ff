export { Gateway } from "./gateway";
export type { GatewayOptions } from "./gateway";
export { AuthVerifier, signAuth } from "./auth";
export type { CredentialSource, GatewayCredential } from "./auth";
