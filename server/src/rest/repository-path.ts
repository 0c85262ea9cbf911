import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * A file or folder of the repository (the OpenAPI document, the built console), found from the sources
 * (server/src/rest/) and from the bundle (server/dist/ or its chunks/) alike; the first place it would be when it is
 * in neither, so that a message can name where it was looked for.
 */
export function repositoryPath(relative: string): string {
  const candidates = ["../../../", "../../"].map((up) => fileURLToPath(new URL(up + relative, import.meta.url)));
  return candidates.find((candidate) => existsSync(candidate)) ?? candidates[0]!;
}
