import type { JSX } from "preact";

/** A failure to load something, with the server's detail. */
export function Problem(props: { error: string | undefined; what?: string }): JSX.Element | null {
  if (props.error === undefined) return null;
  return (
    <p class="problem" role="alert">
      {props.what === undefined ? "" : `${props.what}: `}
      {props.error}
    </p>
  );
}
