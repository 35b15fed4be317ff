// The part of node-red-node-test-helper 0.3.x the node specs use; the package ships no types.
declare module "node-red-node-test-helper" {
  import type { Node } from "node-red";

  namespace helper {
    export interface FlowNode {
      id: string;
      type: string;
      [property: string]: unknown;
    }

    export interface LogEvent {
      level: number;
      id?: string;
      type?: string;
      msg?: unknown;
    }

    export interface LogSpy {
      args: [LogEvent][];
    }

    export interface AdminResponse {
      status: number;
      body: unknown;
    }

    export interface AdminRequest extends PromiseLike<AdminResponse> {
      send(body?: unknown): AdminRequest;
    }

    export interface AdminAgent {
      get(url: string): AdminRequest;
      post(url: string): AdminRequest;
    }

    export type NodeModule = (RED: never) => unknown;

    export interface NodeTestHelper {
      init(runtimePath?: string, userSettings?: Record<string, unknown>): void;
      settings(userSettings?: Record<string, unknown>): Record<string, unknown>;
      load(
        nodes: NodeModule | NodeModule[],
        flow: FlowNode[],
        credentials?: Record<string, Record<string, string>>,
      ): Promise<void>;
      unload(): Promise<void>;
      setFlows(
        flow: FlowNode[],
        type?: "full" | "flows" | "nodes",
        credentials?: Record<string, Record<string, string>>,
      ): Promise<void>;
      getNode(id: string): Node | null;
      request(): AdminAgent;
      log(): LogSpy;
    }
  }

  const helper: helper.NodeTestHelper;
  export = helper;
}
