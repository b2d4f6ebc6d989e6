import type { FrameRecord } from "../client";

/** The raw protocol frames of the last answer: the protocol's living documentation. */
export function FramesPanel({ frames, onDrop }: { frames: FrameRecord[]; onDrop?: () => void }) {
  const start = frames[0]?.at ?? 0;
  return (
    <details className="frames" data-testid="frames-panel">
      <summary>Developer: protocol frames of the last answer ({frames.length})</summary>
      <p className="frames-help">
        Every frame this page sent (→) and received (←) for the last answer, on which socket, and when.
        See <code>docs/protocol.md</code> for what they mean.
        {onDrop && (
          <>
            {" "}
            <button type="button" className="link" onClick={onDrop}>
              Drop the connection
            </button>{" "}
            to watch the page reconnect and resume the answer.
          </>
        )}
      </p>
      <ol className="frame-list">
        {frames.map((f, i) => (
          <li key={i} className={f.dir}>
            <span className="frame-meta">
              {f.dir === "out" ? "→" : "←"} #{f.socket} +{f.at - start} ms
            </span>
            <code>{JSON.stringify(f.frame)}</code>
          </li>
        ))}
      </ol>
    </details>
  );
}
