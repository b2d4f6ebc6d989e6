import { useEffect, useState } from "react";

interface ModelEntry {
  id: string;
  description?: string;
}

export function ChatPage() {
  const [models, setModels] = useState<ModelEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    fetch("api/v1/models")
      .then(async (r) => {
        if (!r.ok) throw new Error(`the gateway answered ${r.status}`);
        return (await r.json()) as { data: ModelEntry[] };
      })
      .then((body) => setModels(body.data))
      .catch((e: unknown) => setError(String(e)));
  }, []);
  return (
    <section aria-labelledby="chat-title">
      <h2 id="chat-title">Chat</h2>
      {error && <p role="alert">Could not load the models: {error}</p>}
      <label htmlFor="model">Model</label>
      <select id="model" disabled={!models}>
        {(models ?? []).map((m) => (
          <option key={m.id} value={m.id}>
            {m.id}
          </option>
        ))}
      </select>
    </section>
  );
}
