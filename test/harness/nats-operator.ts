import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser, fmtCreds, type KeyPair, type Permissions } from "@nats-io/jwt";

/**
 * NATS decentralised auth as `nsc` sets it up, made with the NATS maintainers' JWT library: an operator, one account
 * with JetStream enabled, and user credentials files signed by that account. The server trusts the operator and
 * knows the account from a memory resolver (preloaded), so no account server is needed.
 */
export class NatsOperator {
  readonly #dir: string;
  readonly #account: KeyPair;
  readonly #operatorJwt: string;
  readonly #accountJwt: string;
  readonly #system: { readonly key: string; readonly jwt: string };

  private constructor(dir: string, account: KeyPair, operatorJwt: string, accountJwt: string, system: { key: string; jwt: string }) {
    this.#dir = dir;
    this.#system = system;
    this.#account = account;
    this.#operatorJwt = operatorJwt;
    this.#accountJwt = accountJwt;
  }

  static async create(dir: string): Promise<NatsOperator> {
    const operator = createOperator();
    const account = createAccount();
    // JetStream needs the server's system account (its internal subscriptions live there).
    const system = createAccount();
    const operatorJwt = await encodeOperator("pc-test", operator, { system_account: system.getPublicKey() });
    const systemJwt = await encodeAccount("SYS", system, {}, { signer: operator });
    // -1: no limit; JetStream is on for an account only when it has storage.
    const accountJwt = await encodeAccount("portcullis", account, { limits: { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } }, { signer: operator });
    return new NatsOperator(dir, account, operatorJwt, accountJwt, { key: system.getPublicKey(), jwt: systemJwt });
  }

  /** nats-server configuration lines: trust this operator, know its account. */
  get serverConfig(): string[] {
    return [
      `operator: ${this.#operatorJwt}`,
      `system_account: ${this.#system.key}`,
      "resolver: MEMORY",
      `resolver_preload: { ${this.#account.getPublicKey()}: ${this.#accountJwt}, ${this.#system.key}: ${this.#system.jwt} }`,
    ];
  }

  /** Writes a user credentials file (JWT and NKey seed, as `nsc generate creds` writes it, 0600); returns its path. */
  async credentials(name: string, permissions: Partial<Permissions> = {}, signer: KeyPair = this.#account): Promise<string> {
    const user = createUser();
    const jwt = await encodeUser(name, user, signer, { ...permissions, subs: -1, data: -1, payload: -1 });
    const file = join(this.#dir, `${name}.creds`);
    writeFileSync(file, fmtCreds(jwt, user), { mode: 0o600 }); // a new file: created 0600 (a umask only takes away)
    return file;
  }

  /** An account key the server does not know: users it signs are refused. */
  static strangerAccount(): KeyPair {
    return createAccount();
  }
}
