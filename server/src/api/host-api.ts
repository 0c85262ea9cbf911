import type { HostServiceServer, HostServiceService } from "@portcullis/sdk/gen/portcullis/v1/host.js";
import { operation, type OperationsOf } from "./operation.js";

export type HostOperations = OperationsOf<typeof HostServiceService, HostServiceServer>;

/** The HostService contract: the caller as the transport authenticated it. */
export function hostOperations(): HostOperations {
  return {
    getCallerIdentity: operation("viewer", () => "caller", async (_request, principal) => ({
      principal: principal.name,
      role: principal.role,
      address: principal.address ?? "",
    })),
  };
}
