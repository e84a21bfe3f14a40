// The chat panel: a conversation with the planning agent about the current brief or job.
// Replies stream as Server-Sent Events from a POST (read with fetch); the agent's changes are
// listed under its reply, and what it proposes (approve, render again) is a button the person
// presses: the agent never spends compute itself.

import { language, t } from "./i18n.js";

/** Events of a text/event-stream body, as {event, data} with data parsed as JSON. */
export async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        const [key, ...rest] = line.split(":");
        const text = rest.join(":").replace(/^ /, "");
        if (key === "event") event = text;
        else if (key === "data") data.push(text);
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
    if (done) return;
  }
}

export class Chat {
  /**
   * @param {HTMLElement} root the panel
   * @param {object} hooks request(path, init) -> Response; jobId() -> the open job's id;
   *   changed(change) after each change; propose(proposal) -> the button's action.
   */
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.log = root.querySelector("#chat-log");
    this.form = root.querySelector("#chat-form");
    this.chat = null;
    this.opening = null;
    this.model = root.querySelector("#chat-model");
    this.open().catch(() => {}); // to say at once which model answers
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = this.form.text.value.trim();
      if (text) this.send(text);
    });
    this.form.text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.form.requestSubmit();
      }
    });
  }

  /** Say which model answers, in the page's language. */
  relabel() {
    if (!this.chat) return;
    this.model.textContent = t(`chat.model.${this.chat.endpoint}`, { model: this.chat.model });
    this.model.dataset.endpoint = this.chat.endpoint;
  }

  /** Start a new conversation when the open job changes. */
  follow(jobId) {
    if (this.chat && this.chat.job_id !== jobId) {
      this.chat = null;
      this.log.replaceChildren();
      this.open().catch(() => {});
    }
  }

  /** The conversation about the open job (or a new brief), made once; it names its model. */
  open() {
    if (this.chat) return Promise.resolve(this.chat);
    this.opening ??= (async () => {
      const made = await this.hooks.request("/v1/chats", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ job_id: this.hooks.jobId(), language: language() }),
      });
      if (!made.ok) throw new Error((await made.json()).detail);
      this.chat = await made.json();
      this.relabel();
      return this.chat;
    })().finally(() => { this.opening = null; });
    return this.opening;
  }

  entry(role, text) {
    const li = document.createElement("li");
    li.className = `msg ${role}`;
    const who = document.createElement("b");
    who.textContent = t(role === "user" ? "chat.you" : "chat.agent");
    const body = document.createElement("p");
    body.textContent = text;
    li.append(who, body);
    this.log.append(li);
    li.scrollIntoView({ block: "nearest" });
    return { li, body };
  }

  async send(text) {
    const button = this.form.querySelector("button");
    button.disabled = true;
    this.form.text.value = "";
    this.entry("user", text);
    const reply = this.entry("agent", "…");
    try {
      await this.open();
      const response = await this.hooks.request(`/v1/chats/${this.chat.id}/messages`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ text }),
      });
      if (!response.ok) throw new Error((await response.json()).detail);
      let streamed = "";
      for await (const { event, data } of readEvents(response)) {
        if (event === "token") {
          streamed += data.text;
          reply.body.textContent = streamed;
        } else if (event === "change") {
          this.note(reply.li, data.summary);
          if (data.job_id) this.chat.job_id = data.job_id;
          this.hooks.changed(data);
        } else if (event === "proposal") {
          this.proposal(reply.li, data);
        } else if (event === "done") {
          reply.body.textContent = data.reply || streamed;
        } else if (event === "error") {
          throw new Error(data.detail);
        }
      }
    } catch (err) {
      reply.li.classList.add("failed");
      reply.body.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  }

  note(li, summary) {
    const p = document.createElement("p");
    p.className = "change";
    p.textContent = summary;
    li.append(p);
  }

  proposal(li, data) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "primary";
    button.textContent = data.action === "approve"
      ? t("chat.approve") : t("chat.regenerate", { shot: data.shot_id });
    button.title = data.summary;
    button.addEventListener("click", async () => {
      button.disabled = true;
      await this.hooks.propose(data);
    });
    li.append(button);
  }
}
