import { join } from "node:path";
import { VictimAttacker } from "./netns.js";
import { listen } from "./tcp.js";
import { Fail2banServer } from "./fail2ban.js";
import { startServerFixture, type ServerFixture } from "./fixture.js";

/**
 * A victim running fail2ban (jail `dovecot` with the given settings and action, which change only the victim's
 * kernel) and Portcullis on its socket, an attacker next to it, and a listener on 143 in the victim.
 */
export interface JailHosts {
  readonly hosts: VictimAttacker;
  readonly fail2ban: Fail2banServer;
  readonly f: ServerFixture;
  /** Where Portcullis listens for the Portcullis fail2ban action. */
  readonly actionSocket: string;
  close(): Promise<void>;
}

/**
 * `action`: the jail's action line, given the action socket's path (default: fail2ban's iptables-allports).
 * `serverArgs`: more flags for the server (e.g. a fixed --grpc-address, which survives restarts).
 */
export async function startJailHosts(dovecotSettings: string[], action: (socket: string) => string = () => "iptables-allports[name=dovecot]", serverArgs: string[] = []): Promise<JailHosts> {
  const hosts = new VictimAttacker();
  let actionSocket = "";
  const fail2ban = new Fail2banServer({
    netns: hosts.victim,
    expectedJails: "dovecot",
    jails: ({ dir, mailLog }) => {
      actionSocket = join(dir, "action.sock");
      return [
        "[DEFAULT]", "backend = polling", `logpath = ${mailLog}`, "filter = dovecot",
        "[dovecot]", "enabled = true", ...dovecotSettings, `action = ${action(actionSocket)}`, "",
      ].join("\n");
    },
  });
  let f: ServerFixture | undefined;
  let listener: { stop(): void } | undefined;
  // Each step runs even when one before it throws: the namespaces and fail2ban-server must not outlive the test.
  const close = async (): Promise<void> => {
    try {
      listener?.stop();
      await f?.close();
    } finally {
      try {
        await fail2ban.destroy();
      } finally {
        hosts.destroy();
      }
    }
  };
  try {
    await fail2ban.start();
    f = await startServerFixture(hosts.victim, {
      PORTCULLIS_FAIL2BAN_SOCKET: fail2ban.socket,
      PORTCULLIS_FAIL2BAN_CONFIG_DIR: fail2ban.configDir,
      PORTCULLIS_FAIL2BAN_ACTION_SOCKET: actionSocket,
    }, serverArgs);
    listener = await listen(hosts.victim.name, 143);
    return { hosts, fail2ban, f, actionSocket, close };
  } catch (error) {
    await close();
    throw error;
  }
}
