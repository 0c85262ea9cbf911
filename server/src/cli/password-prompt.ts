// The password of a file a command writes (a PKCS#12 bundle): from a file, for scripts, or typed on the terminal.
import { readFile } from "node:fs/promises";
import { EXIT, UsageError } from "./connect.js";

/**
 * The first line of `file`, or, without one, the password typed twice on the terminal without echo. Refuses an empty
 * password, two that differ, and asking when there is no terminal.
 */
export async function newPassword(what: string, file: string | undefined): Promise<string> {
  if (file !== undefined) return passwordFromFile(file);
  if (process.stdin.isTTY !== true) throw new UsageError(`no terminal to ask for the ${what} password: give it with --password-file FILE (its first line)`);
  const password = await askHidden(`${what} password: `);
  if (password === "") throw new UsageError(`the ${what} password is empty; nothing was written`);
  if ((await askHidden(`${what} password (again): `)) !== password) throw new UsageError(`the two ${what} passwords differ; nothing was written`);
  return password;
}

async function passwordFromFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read the password file ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const password = text.split(/\r?\n/, 1)[0] ?? "";
  if (password === "") throw new UsageError(`the password file ${file} has no password: write it on the file's first line`);
  return password;
}

/** One line from the terminal in raw mode, so that nothing typed is echoed; Backspace edits, Ctrl-C interrupts. */
function askHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  // Echo off before the prompt shows, so that nothing typed as soon as it does is echoed.
  input.setRawMode(true);
  process.stderr.write(prompt);
  input.setEncoding("utf8");
  input.resume();
  return new Promise((resolve, reject) => {
    let typed = "";
    const finish = (error?: Error): void => {
      input.off("data", onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write("\n");
      if (error === undefined) resolve(typed);
      else reject(error);
    };
    const onData = (chunk: string): void => {
      const chars = Array.from(chunk);
      for (const [index, char] of chars.entries()) {
        if (char === "\r" || char === "\n") {
          // What was typed ahead (the second entry, pasted with the first) is for the next question.
          const ahead = chars.slice(index + 1).join("").replace(/^\n/, "");
          finish();
          if (ahead !== "") input.unshift(ahead, "utf8");
          return;
        }
        if (char === "\u0003") {
          // Raw mode turns Ctrl-C into a character: end as the signal would have.
          finish();
          process.exit(EXIT.interrupted);
        }
        if (char === "\u0004" && typed === "") return finish(new UsageError("no password given (end of input)"));
        if (char === "\u007f" || char === "\b") typed = [...typed].slice(0, -1).join("");
        else if (char >= " ") typed += char;
      }
    };
    input.on("data", onData);
  });
}
