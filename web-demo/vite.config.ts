import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the page with hot reload and forwards the API and the
// socket to a gateway started with `make run` (GATEWAY_URL overrides it).
const gateway = process.env.GATEWAY_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  // The gateway serves the build at `/`; relative asset URLs keep it working
  // behind a reverse proxy that mounts the gateway under a prefix.
  base: "./",
  server: {
    proxy: {
      "/api": { target: gateway, ws: true, changeOrigin: false },
    },
  },
  build: { outDir: "dist", emptyOutDir: true },
});
