/** What a broker may say to its host (Node-RED's node.log/warn/error, or the console in a CLI). */
export interface BrokerLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: BrokerLogger = { info() {}, warn() {}, error() {} };
