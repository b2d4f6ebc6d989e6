// The one tool the demo pages can offer a model, in OpenAI's function format (what both
// the socket's `response.create` and the UI chat's `body` take). `demo/tools` calls it
// with your message as `query`; the useChat page also runs it, in the browser, and sends
// its output back so the model can answer from it.
import type { ToolIn } from "../client/protocol.gen";

export const LOOKUP_TOOL = {
  type: "function",
  function: {
    name: "lookup",
    description: "Looks a query up (the demo answers locally, in the browser).",
    parameters: {
      type: "object",
      properties: { query: { type: "string", description: "What to look up." } },
      required: ["query"],
    },
  },
} satisfies ToolIn;

/** The lookup itself: deterministic, so a test knows the answer it leads to. */
export function runLookup(input: unknown): { answer: string } {
  const query = typeof input === "object" && input && "query" in input ? String(input.query) : "";
  return { answer: `${query.length} characters, ${query.split(/\s+/).filter(Boolean).length} words` };
}
