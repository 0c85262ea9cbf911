import type { JSX } from "preact";
import { useEffect } from "preact/hooks";
import { api, idOf, ProblemError, unwrap, type Node } from "../api/client";
import { Problem } from "../components/problem";
import { formatAgo, formatCount, formatTime } from "../format";
import { useLoad, useNow } from "../hooks";

const REFRESH_MS = 5000;

/** The hosts, or undefined when this host is in no fleet. */
async function listNodes(): Promise<Node[] | undefined> {
  try {
    return (await unwrap(api.GET("/v1/nodes"))).nodes ?? [];
  } catch (error) {
    if (error instanceof ProblemError && error.reason === "FLEET_NOT_CONFIGURED") return undefined;
    throw error;
  }
}

/** The hosts of the fleet from their heartbeats: online, version, how far behind the shared bans they are. */
export function FleetView(): JSX.Element {
  const nodes = useLoad(listNodes, []);
  const now = useNow();
  useEffect(() => {
    const timer = setInterval(nodes.reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  const list = nodes.data ?? [];
  const online = list.filter((node) => node.online === true).length;
  return (
    <section aria-labelledby="fleet-title">
      <h1 id="fleet-title" tabIndex={-1}>Fleet</h1>
      <Problem error={nodes.error} what="The fleet could not be read" />
      {nodes.data === undefined ? (nodes.loading ? null : <p class="summary">This host is not in a fleet: its configuration has no <code>cluster</code> section.</p>) : <p class="summary">{formatCount(online)} of {formatCount(list.length)} hosts online.</p>}
      <table id="nodes">
        <caption class="visually-hidden">Hosts of the fleet</caption>
        <thead>
          <tr>
            <th scope="col">Host</th>
            <th scope="col">State</th>
            <th scope="col">Last heartbeat</th>
            <th scope="col">Version</th>
            <th scope="col">Started</th>
            <th scope="col" class="number">Lag</th>
            <th scope="col" class="number">Applied</th>
            <th scope="col" class="number">Refused</th>
          </tr>
        </thead>
        <tbody>
          {list.map((node) => (
            <tr key={node.name}>
              <th scope="row">{idOf(node.name, "nodes")}</th>
              <td><span class={node.online === true ? "badge badge-ok" : "badge badge-bad"}>{node.online === true ? "online" : "offline"}</span></td>
              <td>{formatAgo(node.heartbeatTime, now)}</td>
              <td>{node.version}</td>
              <td>{formatTime(node.startTime)}</td>
              <td class="number">{formatCount(node.lag)}</td>
              <td class="number">{formatCount(node.bansApplied)}</td>
              <td class="number">{formatCount(node.bansRefused)}</td>
            </tr>
          ))}
          {list.length === 0 && nodes.error === undefined && !nodes.loading ? <tr><td colSpan={8}>No host has sent a heartbeat.</td></tr> : null}
        </tbody>
      </table>
    </section>
  );
}
