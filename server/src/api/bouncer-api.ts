import type { Bouncer, BouncerServiceServer, BouncerServiceService } from "../gen/portcullis/v1/bouncer.js";
import type { BouncerService, BouncerView } from "../bouncers/bouncer-service.js";
import { operation, type OperationsOf } from "./operation.js";
import { decodePageToken, encodePageToken, pageSize } from "./pagination.js";
import { bouncerName, parseBouncerName } from "./resource-names.js";

export type BouncerOperations = OperationsOf<typeof BouncerServiceService, BouncerServiceServer>;

/** The BouncerService contract mapped onto the domain. Keys are an admin's business: every method needs admin. */
export function bouncerOperations(bouncers: BouncerService): BouncerOperations {
  return {
    listBouncers: operation("admin", () => "bouncers", async (request) => {
      const size = pageSize(request.pageSize, 100, 1000);
      const after = decodePageToken(request.pageToken, "bouncers");
      const all = bouncers.list().filter((view) => view.name > after);
      const page = all.slice(0, size);
      return { bouncers: page.map(toBouncer), nextPageToken: all.length > size ? encodePageToken("bouncers", page[page.length - 1]!.name) : "" };
    }),

    createBouncer: operation("admin", (request) => bouncerName(request.bouncerId), async (request, call) => {
      const { view, key } = bouncers.create(request.bouncerId, call);
      return { bouncer: toBouncer(view), apiKey: key };
    }),

    deleteBouncer: operation("admin", (request) => request.name, async (request, call) => {
      bouncers.delete(parseBouncerName(request.name), call);
      return {};
    }),
  };
}

function toBouncer(view: BouncerView): Bouncer {
  return {
    name: bouncerName(view.name),
    createTime: new Date(view.createdAt),
    lastPullTime: view.lastPullAt === undefined ? undefined : new Date(view.lastPullAt),
    version: view.version ?? "",
  };
}
