import * as anyMessages from "../gen/google/protobuf/any.js";
import * as emptyMessages from "../gen/google/protobuf/empty.js";
import * as timestampMessages from "../gen/google/protobuf/timestamp.js";
import * as statusMessages from "../gen/google/rpc/status.js";
import * as errorDetailMessages from "../gen/google/rpc/error_details.js";
import * as commonMessages from "../gen/portcullis/v1/common.js";
import * as ipsetMessages from "../gen/portcullis/v1/ipset.js";
import * as firewallMessages from "../gen/portcullis/v1/firewall.js";
import * as eventMessages from "../gen/portcullis/v1/events.js";
import * as jailMessages from "../gen/portcullis/v1/jail.js";
import * as fleetMessages from "../gen/portcullis/v1/fleet.js";
import * as hostMessages from "../gen/portcullis/v1/host.js";
import * as feedMessages from "../gen/portcullis/v1/feed.js";
import * as bouncerMessages from "../gen/portcullis/v1/bouncer.js";

/** What ts-proto generates for every message (`MessageFns<T>`), untyped. */
export interface GeneratedMessage {
  encode(message: unknown, writer?: unknown): { finish(): Uint8Array };
  decode(input: Uint8Array, length?: number): unknown;
  fromJSON(object: unknown): unknown;
  toJSON(message: unknown): unknown;
}

/** Generated modules by protobuf package; a message `A.B` is exported as `A_B`. */
const MODULES: Record<string, readonly object[]> = {
  "google.protobuf": [anyMessages, emptyMessages, timestampMessages],
  "google.rpc": [statusMessages, errorDetailMessages],
  "portcullis.v1": [commonMessages, ipsetMessages, firewallMessages, eventMessages, jailMessages, fleetMessages, hostMessages, feedMessages, bouncerMessages],
};

/** The generated functions of a message, by its full protobuf name (e.g. "portcullis.v1.Rule"). */
export function generatedMessage(typeName: string): GeneratedMessage {
  for (const [pkg, modules] of Object.entries(MODULES)) {
    if (!typeName.startsWith(`${pkg}.`)) continue;
    const exported = typeName.slice(pkg.length + 1).replaceAll(".", "_");
    for (const module of modules) {
      const fns = (module as Record<string, unknown>)[exported] as Partial<GeneratedMessage> | undefined;
      if (typeof fns?.encode === "function" && typeof fns.fromJSON === "function") return fns as GeneratedMessage;
    }
  }
  throw new Error(`no generated code for message ${typeName}; regenerate (npm run generate)`);
}
