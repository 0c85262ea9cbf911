import type { ComponentChildren, JSX } from "preact";
import { useEffect, useState } from "preact/hooks";

/** Where the server serves the console. */
export const BASE = "/console/";

export type Family = "ipv4" | "ipv6";

/** The views, each a path under /console/ (deep links work: the server answers index.html for every such path). */
export type Route =
  | { readonly view: "overview" }
  | { readonly view: "jails" }
  | { readonly view: "jail"; readonly jail: string }
  | { readonly view: "sets" }
  | { readonly view: "set"; readonly set: string }
  | { readonly view: "rules"; readonly family: Family; readonly table: string; readonly chain: string }
  | { readonly view: "events" }
  | { readonly view: "audit" }
  | { readonly view: "fleet" }
  | { readonly view: "address"; readonly address: string }
  | { readonly view: "missing"; readonly path: string };

export function parseRoute(pathname: string, search: string): Route {
  const rest = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname === BASE.slice(0, -1) ? "" : undefined;
  if (rest === undefined) return { view: "missing", path: pathname };
  const parts = rest.split("/").filter((part) => part !== "").map(decode);
  const query = new URLSearchParams(search);
  const [first, second] = parts;
  if (parts.length === 0 || first === "overview") return { view: "overview" };
  if (first === "jails") return second === undefined ? { view: "jails" } : { view: "jail", jail: second };
  if (first === "sets") return second === undefined ? { view: "sets" } : { view: "set", set: second };
  if (first === "rules") {
    const family = query.get("family") === "ipv6" ? "ipv6" : "ipv4";
    return { view: "rules", family, table: query.get("table") ?? "filter", chain: query.get("chain") ?? "INPUT" };
  }
  if (first === "events" || first === "audit" || first === "fleet") return { view: first };
  if (first === "address" && second !== undefined) return { view: "address", address: second };
  return { view: "missing", path: pathname };
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

export function hrefOf(route: Route): string {
  const segment = encodeURIComponent;
  switch (route.view) {
    case "overview":
      return BASE;
    case "jails":
    case "sets":
    case "events":
    case "audit":
    case "fleet":
      return `${BASE}${route.view}`;
    case "jail":
      return `${BASE}jails/${segment(route.jail)}`;
    case "set":
      return `${BASE}sets/${segment(route.set)}`;
    case "rules":
      return `${BASE}rules?${new URLSearchParams({ family: route.family, table: route.table, chain: route.chain }).toString()}`;
    case "address":
      return `${BASE}address/${segment(route.address)}`;
    case "missing":
      return route.path;
  }
}

const NAVIGATED = "portcullis:navigated";

export function navigate(route: Route, options: { replace?: boolean } = {}): void {
  const href = hrefOf(route);
  if (options.replace === true) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  dispatchEvent(new Event(NAVIGATED));
}

/** The current route, following links, back and forward. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname, location.search));
  useEffect(() => {
    const update = (): void => setRoute(parseRoute(location.pathname, location.search));
    addEventListener("popstate", update);
    addEventListener(NAVIGATED, update);
    return () => {
      removeEventListener("popstate", update);
      removeEventListener(NAVIGATED, update);
    };
  }, []);
  return route;
}

/** A real link (middle click, copy link address work) that navigates in place on a plain click. */
export function Link(props: { to: Route; children: ComponentChildren; class?: string; "aria-current"?: "page" | undefined }): JSX.Element {
  const onClick = (event: MouseEvent): void => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={hrefOf(props.to)} class={props.class} aria-current={props["aria-current"]} onClick={onClick}>
      {props.children}
    </a>
  );
}
