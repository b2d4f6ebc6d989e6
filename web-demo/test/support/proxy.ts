// A TCP proxy in front of the gateway, so tests can break the network the way it
// breaks in real life: cut every connection (RST/FIN mid-answer), or go silent
// (packets vanish, nothing closes), while new connections still get through.
import { createServer, connect, type Server, type Socket } from "node:net";

export interface Proxy {
  port: number;
  url: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Destroy every open connection now (new ones are still accepted). */
  cut(): void;
  /** Stop forwarding on the open connections without closing them. */
  silence(): void;
  /** Drop gateway->client bytes on the open connections (the client hears nothing more). */
  holdDownstream(): void;
  /** Resolves once held gateway->client bytes were dropped (the gateway answered). */
  dropped(): Promise<void>;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<Proxy> {
  const pairs = new Set<{ client: Socket; upstream: Socket; silent: boolean; hold: boolean }>();
  let accepted = 0;
  let droppedBytes = 0;
  let onDrop: (() => void) | null = null;
  const server: Server = createServer((client) => {
    accepted += 1;
    const upstream = connect(targetPort, "127.0.0.1");
    const pair = { client, upstream, silent: false, hold: false };
    pairs.add(pair);
    client.on("data", (d) => {
      if (!pair.silent) upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (pair.hold) {
        droppedBytes += d.length;
        onDrop?.();
      } else if (!pair.silent) client.write(d);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", end);
    upstream.on("error", end);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const cutAll = () => {
    for (const pair of [...pairs]) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
  };
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    cut: cutAll,
    silence() {
      for (const pair of pairs) pair.silent = true;
    },
    holdDownstream() {
      for (const pair of pairs) pair.hold = true;
    },
    dropped() {
      if (droppedBytes > 0) return Promise.resolve();
      return new Promise<void>((r) => (onDrop = r));
    },
    async close() {
      cutAll();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
