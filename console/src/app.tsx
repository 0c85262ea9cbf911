import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { CallerProvider, useCaller } from "./caller";
import { NoticeProvider } from "./components/notices";
import { useStreamState } from "./live/host-events";
import { hrefOf, Link, navigate, useRoute, type Route } from "./router";
import { JailsView } from "./views/jails";
import { JailView } from "./views/jail";
import { SetsView } from "./views/sets";
import { SetView } from "./views/set";
import { RulesView } from "./views/rules";
import { EventsView } from "./views/events";
import { AuditView } from "./views/audit";
import { FleetView } from "./views/fleet";
import { OverviewView } from "./views/overview";
import { AddressView } from "./views/address";

const SECTIONS: ReadonlyArray<{ label: string; route: Route; matches: ReadonlyArray<Route["view"]> }> = [
  { label: "Overview", route: { view: "overview" }, matches: ["overview"] },
  { label: "Jails", route: { view: "jails" }, matches: ["jails", "jail"] },
  { label: "Sets", route: { view: "sets" }, matches: ["sets", "set"] },
  { label: "Rules", route: { view: "rules", family: "ipv4", table: "filter", chain: "INPUT" }, matches: ["rules"] },
  { label: "Events", route: { view: "events" }, matches: ["events"] },
  { label: "Audit", route: { view: "audit" }, matches: ["audit"] },
  { label: "Fleet", route: { view: "fleet" }, matches: ["fleet"] },
];

export function App(): JSX.Element {
  return (
    <CallerProvider>
      <NoticeProvider>
        <Shell />
      </NoticeProvider>
    </CallerProvider>
  );
}

function Shell(): JSX.Element {
  const route = useRoute();
  const main = useRef<HTMLElement>(null);
  // A new view (not a new chain of the same table): its title names it, and keyboard focus starts at its heading.
  const view = hrefOf(route).split("?")[0];
  useEffect(() => {
    document.title = `${titleOf(route)} · Portcullis`;
    main.current?.querySelector("h1")?.focus();
  }, [view]);
  return (
    <div class="shell">
      <a class="skip-link" href="#main">Skip to content</a>
      <header class="topbar">
        <span class="brand">Portcullis</span>
        <nav aria-label="Views">
          <ul>
            {SECTIONS.map((section) => (
              <li key={section.label}>
                <Link to={section.route} aria-current={section.matches.includes(route.view) ? "page" : undefined}>{section.label}</Link>
              </li>
            ))}
          </ul>
        </nav>
        <AddressLookup />
        <LiveIndicator />
        <Identity />
      </header>
      <main id="main" ref={main}>
        <View route={route} />
      </main>
    </div>
  );
}

function View(props: { route: Route }): JSX.Element {
  const route = props.route;
  switch (route.view) {
    case "overview":
      return <OverviewView />;
    case "jails":
      return <JailsView />;
    case "jail":
      return <JailView key={route.jail} jail={route.jail} />;
    case "sets":
      return <SetsView />;
    case "set":
      return <SetView key={route.set} set={route.set} />;
    case "rules":
      return <RulesView key={`${route.family}/${route.table}`} family={route.family} table={route.table} chain={route.chain} />;
    case "events":
      return <EventsView />;
    case "audit":
      return <AuditView />;
    case "fleet":
      return <FleetView />;
    case "address":
      return <AddressView key={route.address} address={route.address} />;
    case "missing":
      return (
        <section>
          <h1 tabIndex={-1}>Not found</h1>
          <p>There is no view at {route.path}.</p>
        </section>
      );
  }
}

function titleOf(route: Route): string {
  switch (route.view) {
    case "jail":
      return `Jail ${route.jail}`;
    case "set":
      return `Set ${route.set}`;
    case "address":
      return `Address ${route.address}`;
    case "missing":
      return "Not found";
    default:
      return route.view.charAt(0).toUpperCase() + route.view.slice(1);
  }
}

function AddressLookup(): JSX.Element {
  const [text, setText] = useState("");
  const submit = (event: SubmitEvent): void => {
    event.preventDefault();
    const address = text.trim();
    if (address !== "") navigate({ view: "address", address });
  };
  return (
    <form class="lookup" role="search" onSubmit={submit}>
      <label for="lookup-address" class="visually-hidden">Address</label>
      <input id="lookup-address" type="search" placeholder="Look up an address" value={text} onInput={(event) => setText(event.currentTarget.value)} />
      <button type="submit">Look up</button>
    </form>
  );
}

function LiveIndicator(): JSX.Element {
  const state = useStreamState();
  const text = state === "live" ? "Live" : state === "connecting" ? "Connecting…" : "Reconnecting…";
  return <span class={`live live-${state}`} role="status" aria-label={`Event stream: ${text}`}>{text}</span>;
}

function Identity(): JSX.Element {
  const { caller, error } = useCaller();
  if (caller === undefined) return <span class="identity">{error === undefined ? "…" : "identity unknown"}</span>;
  return (
    <span class="identity">
      <span class="principal">{caller.principal}</span> <span class={`role role-${caller.role}`}>{caller.role}</span>
    </span>
  );
}
