/** A rule in an `iptables-save` dump that matches an ipset. */
export interface SetReference {
  readonly family: "inet" | "inet6";
  readonly table: string;
  readonly rule: string;
}

/**
 * Finds the rules of an `iptables-save`/`ip6tables-save` dump that use `-m set --match-set NAME`, so that refusing
 * to destroy a set can name the rule that holds it.
 */
export function findSetReferences(dump: string, family: SetReference["family"], set: string): SetReference[] {
  const references: SetReference[] = [];
  let table = "";
  for (const line of dump.split("\n")) {
    if (line.startsWith("*")) table = line.slice(1).trim();
    else if (line.startsWith("-A ")) {
      const tokens = line.split(/\s+/);
      for (let i = 0; i < tokens.length - 1; i++) {
        if (tokens[i] === "--match-set" && tokens[i + 1] === set) {
          references.push({ family, table, rule: line.trim() });
          break;
        }
      }
    }
  }
  return references;
}
