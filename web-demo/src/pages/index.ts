// The demo's pages. To add one: write a component under src/pages/, add an entry
// here, and it gets a tab in the header and the URL `#/<id>`. The first entry is
// what `/` shows.
import type { ComponentType } from "react";
import { ChatPage } from "./ChatPage";
import { UIChatPage } from "./UIChatPage";

export interface PageEntry {
  /** URL fragment (`#/<id>`) and test hook (`data-page="<id>"`). */
  id: string;
  /** Tab label. */
  title: string;
  component: ComponentType;
}

export const pages: PageEntry[] = [
  { id: "chat", title: "WebSocket chat", component: ChatPage },
  { id: "ui-chat", title: "useChat (AI SDK)", component: UIChatPage },
];
