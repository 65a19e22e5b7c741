/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Optional: the WebSocket URL, when it is not the page's own origin + /ws. */
  readonly VITE_GUESSME_WS_URL?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
