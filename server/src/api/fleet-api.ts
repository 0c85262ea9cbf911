import type { FleetServiceServer, FleetServiceService } from "../gen/portcullis/v1/fleet.js";
import { notConfigured, type FleetSharing } from "../fleet/fleet.js";
import type { FleetNodes } from "../fleet/fleet-nodes.js";
import { operation, type OperationsOf } from "./operation.js";

export type FleetOperations = OperationsOf<typeof FleetServiceService, FleetServiceServer>;

const NODE_PREFIX = "nodes/";

/** The FleetService contract mapped onto fleet mode's view of the hosts; FAILED_PRECONDITION outside a fleet. */
export function fleetOperations(fleet: FleetSharing): FleetOperations {
  const nodes = (): FleetNodes => {
    if (fleet.nodes === undefined) throw notConfigured();
    return fleet.nodes;
  };
  return {
    listNodes: operation("viewer", () => "nodes", async () => ({
      nodes: (await nodes().list()).map((node) => ({
        name: NODE_PREFIX + node.name,
        version: node.version,
        heartbeatTime: new Date(node.heartbeatAt),
        startTime: new Date(node.startedAt),
        lag: node.lag,
        bansApplied: node.bansApplied,
        bansRefused: node.bansRefused,
        online: node.online,
      })),
    })),

    searchBans: operation("viewer", () => "nodes/-/bans", async (request) => {
      const found = await nodes().search(request.address, request.timeoutMs);
      return {
        bans: found.bans.map((ban) => ({
          node: NODE_PREFIX + ban.node,
          resource: ban.resource,
          banTime: new Date(ban.since),
          expireTime: ban.expiresAt === undefined ? undefined : new Date(ban.expiresAt),
          originNode: ban.originNode === undefined ? "" : NODE_PREFIX + ban.originNode,
        })),
        answeredNodes: found.answered.map((name) => NODE_PREFIX + name),
        unansweredNodes: found.unanswered.map((name) => NODE_PREFIX + name),
      };
    }),
  };
}
