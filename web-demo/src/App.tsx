import { useEffect, useState } from "react";
import { pages, type PageEntry } from "./pages";

function pageFromHash(): PageEntry {
  const id = window.location.hash.replace(/^#\/?/, "");
  return pages.find((p) => p.id === id) ?? pages[0]!;
}

export function App() {
  const [page, setPage] = useState(pageFromHash);
  useEffect(() => {
    const onHash = () => setPage(pageFromHash());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  const Page = page.component;
  return (
    <div className="app">
      <header className="app-header">
        <h1>chat-gateway</h1>
        {pages.length > 1 && (
          <nav aria-label="Demo pages">
            {pages.map((p) => (
              <a key={p.id} href={`#/${p.id}`} aria-current={p.id === page.id ? "page" : undefined}>
                {p.title}
              </a>
            ))}
          </nav>
        )}
      </header>
      <main data-page={page.id}>
        <Page />
      </main>
    </div>
  );
}
