/** Named services: the seed's mail server ports and ssh. Groups expand to their members. */
export interface NamedService {
  readonly name: string;
  readonly protocol: "tcp" | "udp";
  readonly ports: readonly number[];
  readonly description: string;
}

export const SERVICES: readonly NamedService[] = [
  { name: "smtp", protocol: "tcp", ports: [25], description: "SMTP (mail transfer)" },
  { name: "submission", protocol: "tcp", ports: [587], description: "mail submission" },
  { name: "smtps", protocol: "tcp", ports: [465], description: "SMTP over TLS" },
  { name: "imap", protocol: "tcp", ports: [143], description: "IMAP" },
  { name: "imaps", protocol: "tcp", ports: [993], description: "IMAP over TLS" },
  { name: "pop3", protocol: "tcp", ports: [110], description: "POP3" },
  { name: "pop3s", protocol: "tcp", ports: [995], description: "POP3 over TLS" },
  { name: "ssh", protocol: "tcp", ports: [22], description: "SSH" },
];

export const GROUPS: Readonly<Record<string, readonly string[]>> = {
  mail: ["smtp", "submission", "smtps", "imap", "imaps", "pop3", "pop3s"],
};

/** Expands names and groups to services, in the order given, without duplicates; undefined for an unknown name. */
export function expandServices(names: readonly string[]): { services: NamedService[]; unknown?: string } {
  const services: NamedService[] = [];
  for (const name of names) {
    const members = GROUPS[name] ?? [name];
    for (const member of members) {
      const service = SERVICES.find((candidate) => candidate.name === member);
      if (service === undefined) return { services, unknown: name };
      if (!services.includes(service)) services.push(service);
    }
  }
  return { services };
}
