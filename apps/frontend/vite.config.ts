/// <reference types="vitest/config" />
import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

// The serve app's address for `npm run dev` (the dev server proxies the API to it).
const backend = process.env.GUESSME_BACKEND ?? "http://127.0.0.1:8000";
const api = ["/predict", "/model", "/rounds", "/healthz"];

export default defineConfig({
  // Served at the site root by the serve app (local mode) and by nginx (Kubernetes).
  base: "/",
  plugins: [vue()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: {
    proxy: {
      ...Object.fromEntries(api.map((path) => [path, backend])),
      "/ws": { target: backend.replace(/^http/, "ws"), ws: true },
    },
  },
  test: {
    environment: "jsdom",
    include: ["tests/**/*.test.ts"],
    restoreMocks: true,
  },
});
