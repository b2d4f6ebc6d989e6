// GET /api/v1/models: the gateway's models (provider/model ids, aliases) and agents.
import { useEffect, useState } from "react";

export interface ModelEntry {
  id: string;
  owned_by?: string;
  description?: string;
}
export interface AgentEntry {
  id: string;
  description?: string;
  model?: string;
}
export interface ModelList {
  models: ModelEntry[];
  agents: AgentEntry[];
}

export function useModels(token: string | null): { list: ModelList | null; error: string | null } {
  const [list, setList] = useState<ModelList | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    setError(null);
    fetch("api/v1/models", {
      signal: abort.signal,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    })
      .then(async (r) => {
        const body = (await r.json().catch(() => null)) as
          | { data?: ModelEntry[]; agents?: AgentEntry[]; error?: { message?: string } }
          | null;
        if (!r.ok) {
          const why = body?.error?.message ?? `HTTP ${r.status}`;
          throw new Error(r.status === 401 ? `the gateway needs a client key (${why})` : why);
        }
        setList({ models: body?.data ?? [], agents: body?.agents ?? [] });
      })
      .catch((e: unknown) => {
        if (!abort.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      });
    return () => abort.abort();
  }, [token]);
  return { list, error };
}
