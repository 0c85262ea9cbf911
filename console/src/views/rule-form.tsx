import type { JSX } from "preact";
import { useState } from "preact/hooks";
import type { Rule, TargetKind } from "../api/client";

const TARGETS: ReadonlyArray<readonly [TargetKind, string]> = [
  ["TARGET_KIND_DROP", "DROP"],
  ["TARGET_KIND_REJECT", "REJECT"],
  ["TARGET_KIND_ACCEPT", "ACCEPT"],
  ["TARGET_KIND_LOG", "LOG"],
  ["TARGET_KIND_RETURN", "RETURN"],
];

const PROTOCOLS = ["", "tcp", "udp", "icmp", "ipv6-icmp", "sctp"];

/** "22", "80,443", "1000-2000" → port ranges; undefined when the text is not that. */
export function parsePorts(text: string): Array<{ first: number; last: number }> | undefined {
  const ranges: Array<{ first: number; last: number }> = [];
  for (const part of text.split(",").map((item) => item.trim()).filter((item) => item !== "")) {
    const match = /^(\d{1,5})(?:[-:](\d{1,5}))?$/.exec(part);
    if (match === null) return undefined;
    const first = Number(match[1]);
    ranges.push({ first, last: match[2] === undefined ? first : Number(match[2]) });
  }
  return ranges;
}

/** A new rule for a chain: the common matches and a target. The server validates it (at review and at apply). */
export function RuleForm(props: { chain: string; onAdd: (rule: Rule, atTop: boolean) => void }): JSX.Element {
  const [target, setTarget] = useState<TargetKind>("TARGET_KIND_DROP");
  const [protocol, setProtocol] = useState("tcp");
  const [source, setSource] = useState("");
  const [destination, setDestination] = useState("");
  const [port, setPort] = useState("");
  const [set, setSet] = useState("");
  const [comment, setComment] = useState("");
  const [atTop, setAtTop] = useState(false);
  const [problem, setProblem] = useState<string | undefined>(undefined);
  const submit = (event: SubmitEvent): void => {
    event.preventDefault();
    const ports = parsePorts(port);
    if (ports === undefined) {
      setProblem("Ports are a number, a range like 1000-2000, or a comma-separated list.");
      return;
    }
    setProblem(undefined);
    const rule: Rule = {
      chain: props.chain,
      target: { kind: target },
      ...(protocol === "" ? {} : { protocol }),
      ...(source.trim() === "" ? {} : { source: { address: source.trim() } }),
      ...(destination.trim() === "" ? {} : { destination: { address: destination.trim() } }),
      ...(ports.length === 0 ? {} : { destinationPort: { ports } }),
      ...(set.trim() === "" ? {} : { matchSet: { set: set.trim(), directions: ["SET_DIRECTION_SRC"] } }),
      ...(comment.trim() === "" ? {} : { comment: comment.trim() }),
    };
    props.onAdd(rule, atTop);
    setSource("");
    setDestination("");
    setPort("");
    setSet("");
    setComment("");
  };
  return (
    <form class="rule-form" onSubmit={submit} aria-label={`New rule in ${props.chain}`}>
      <label>Target
        <select value={target} onChange={(event) => setTarget(event.currentTarget.value as TargetKind)}>
          {TARGETS.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
        </select>
      </label>
      <label>Protocol
        <select value={protocol} onChange={(event) => setProtocol(event.currentTarget.value)}>
          {PROTOCOLS.map((value) => <option key={value} value={value}>{value === "" ? "any" : value}</option>)}
        </select>
      </label>
      <label>Source<input type="text" placeholder="any" value={source} onInput={(event) => setSource(event.currentTarget.value)} /></label>
      <label>Destination<input type="text" placeholder="any" value={destination} onInput={(event) => setDestination(event.currentTarget.value)} /></label>
      <label>Destination ports<input type="text" placeholder="any" value={port} onInput={(event) => setPort(event.currentTarget.value)} /></label>
      <label>Source in set<input type="text" placeholder="none" value={set} onInput={(event) => setSet(event.currentTarget.value)} /></label>
      <label>Comment<input type="text" maxLength={256} value={comment} onInput={(event) => setComment(event.currentTarget.value)} /></label>
      <label>Position
        <select value={atTop ? "top" : "end"} onChange={(event) => setAtTop(event.currentTarget.value === "top")}>
          <option value="end">After the managed rules</option>
          <option value="top">Before the managed rules</option>
        </select>
      </label>
      <button type="submit">Add to the draft</button>
      {problem === undefined ? null : <p class="problem" role="alert">{problem}</p>}
    </form>
  );
}
