/**
 * Entry point of the room page (`<script type="module" src="/static/chat/client/main.js">`).
 *
 * Reads the room's settings from the data- attributes of `#chat-room` (the page allows no inline
 * script) and wires the pieces together: Connection (transports), Timeline (message list),
 * Sender + Outbox (what the reader types), the files a signed-in reader attaches
 * (attach-composer.js), and the small indicators.
 */

import { csrfToken, fetchOlder } from "./api.js";
import { wireAttachments, wireLightbox } from "./attach-composer.js";
import { wireComposerLimit } from "./composer-limit.js";
import { Connection } from "./connection.js";
import { watchGroups } from "./daygroups.js";
import { wireDirectMessages } from "./direct.js";
import {
  FINAL_STATES,
  OutboxStatus,
  StatusView,
  TypingIndicator,
  UnreadCounter,
} from "./indicators.js";
import { Feed } from "./feed.js";
import { wireMessageActions } from "./lifecycle.js";
import { markOwnMentions, wireMentionAutocomplete } from "./mentions.js";
import { maybeNotify, wireNotificationButton } from "./notify.js";
import { Outbox } from "./outbox.js";
import { wireReadMarker } from "./readmarker.js";
import { wireRoomMenu } from "./room-menu.js";
import { renderPresence } from "./render.js";
import { wireReplies } from "./replies.js";
import { openSearchTarget } from "./search-context.js";
import { Sender } from "./sender.js";
import { Timeline } from "./timeline.js";

/** Send `{"type": "typing"}` at most this often while the reader types. */
const TYPING_EVERY_MS = 2000;
/** Scrolling this close to the top of the list loads older messages. */
const LOAD_OLDER_AT_PX = 40;
/** Messages per page of older history, unless the page says (`data-page-size`). */
const OLDER_PAGE = 50;

/** Links client.css unless the template already does (it is the client's own stylesheet). */
function ensureStylesheet() {
  if (document.querySelector('link[rel="stylesheet"][href*="/client/client."]')) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = new URL("./client.css", import.meta.url).href;
  document.head.append(link);
}

/** Starts the chat client on the room page. @param {HTMLElement} root `#chat-room` */
export function startRoom(root) {
  ensureStylesheet();
  const room = root.dataset.room;
  // The reader: "own" is decided by the stable id, never by the display name.
  const meId = root.dataset.userId || "";
  let me = root.dataset.userName || "";
  const list = /** @type {HTMLOListElement} */ (document.getElementById("message-list"));
  const presence = document.getElementById("presence");
  const form = /** @type {HTMLFormElement} */ (document.getElementById("composer"));
  const input = /** @type {HTMLTextAreaElement} */ (document.getElementById("composer-input"));

  const menuButton = document.getElementById("room-menu-button");
  const menuPanel = document.getElementById("room-menu");
  if (menuButton && menuPanel) wireRoomMenu({ button: menuButton, panel: menuPanel });

  const status = new StatusView(document.getElementById("connection-state"), root);
  const typing = new TypingIndicator(document.getElementById("typing-indicator"));
  const unread = new UnreadCounter(document);
  const outbox = new Outbox(room);
  const timeline = new Timeline(list, {
    onRetry: (nonce) => sender.retry(nonce),
    onDiscard: (nonce) => sender.discard(nonce),
  });

  watchGroups(list);
  /** Who is online now (the last presence), for @ autocomplete. */
  let online = [];

  const markOwn = (msg) => {
    const li = timeline.byId.get(msg.id);
    li?.classList.toggle("own", Boolean(meId) && msg.user.id === meId);
  };

  /** Every stored message, however it arrived, comes through here. */
  const showMessage = (msg, { scroll = true } = {}) => {
    const own = Boolean(msg.nonce && outbox.get(msg.nonce));
    const atBottom = timeline.isNearBottom();
    const isNew = timeline.upsert(msg);
    sender.acknowledge(msg);
    if (!isNew) return;
    markOwn(msg);
    typing.stop(msg.user.name);
    if (!own && msg.user.id !== meId) unread.bump();
    if (scroll && (own || atBottom)) timeline.scrollToBottom();
  };

  /** Presence from a hello or a presence frame (`people`: id, name, guest). */
  const showPresence = (event) => {
    // A server without `people` (older chat server during an upgrade): names only, as before.
    const people = Array.isArray(event.people)
      ? event.people
      : (event.online || []).map((name) => ({ id: `name:${name}`, name, guest: false }));
    const mine = people.find((person) => person.id === meId);
    if (mine) me = mine.name; // renamed in another tab: pending messages show the new name
    online = people;
    renderPresence(presence, people, meId);
  };

  const showMany = (messages) => {
    const atBottom = timeline.isNearBottom();
    for (const msg of messages || []) showMessage(msg, { scroll: false });
    if (atBottom) timeline.scrollToBottom();
  };

  const outage = new OutboxStatus(document.getElementById("outbox-status"), list);

  const onFinal = (state) => {
    // Read-only, not disabled: the draft stays selectable for copying (client.css greys it).
    input.readOnly = true;
    input.setAttribute("aria-disabled", "true");
    // Nobody is here or typing any more: the room takes no messages.
    renderPresence(presence, [], meId);
    typing.clear();
    form.querySelectorAll("button").forEach((b) => {
      b.disabled = true;
    });
    if (state === "archived") input.placeholder = "This room is archived.";
    if (state === "deleted") input.placeholder = "This room no longer exists.";
    if (state === "forbidden") input.placeholder = "You can no longer chat in this room.";
    if (state === "denied") input.placeholder = "Sign in to chat in this room.";
  };

  const connection = new Connection({
    ticketUrl: root.dataset.ticketUrl,
    socketGiveUpMs: Number(root.dataset.socketGiveUpMs) || undefined,
    getSince: () => timeline.highestId(),
    handlers: {
      onState: (state, detail) => {
        status.show(state, detail);
        outage.setState(state);
        if (FINAL_STATES.has(state)) onFinal(state);
      },
      onUser: (user) => {
        if (user?.name) me = user.name;
      },
      // The one ingestion path: every frame of both transports (docs/protocol.md, "WebSocket";
      // a long poll answers the same frames in `events`).
      onFrame: function onFrame(frame) {
        switch (frame.type) {
          case "hello":
            if (frame.user?.name) me = frame.user.name;
            showMany(frame.history);
            showPresence(frame);
            // What changed in messages already shown (edits, deletions) while away.
            for (const event of frame.events || []) onFrame(event);
            break;
          case "history":
            showMany(frame.messages);
            break;
          case "message":
            showMessage(frame);
            break;
          case "presence":
            showPresence(frame);
            break;
          case "typing":
            if (frame.user && frame.user !== me) typing.show(String(frame.user));
            break;
          case "deleted":
            timeline.markDeleted(frame.id);
            replies.parentChanged(frame);
            break;
          case "edited":
            timeline.applyEdit(frame);
            replies.parentChanged(frame);
            break;
          case "reactions":
            timeline.applyReactions(frame);
            break;
          case "ack":
            // A nonce the server had already stored: for this sender only, never broadcast.
            sender.onAck(frame);
            break;
          case "error":
            if (frame.nonce) sender.refused(frame.nonce, frame.code, frame.retry_after);
            break;
          default:
            break;
        }
      },
      onReady: () => sender.flush(),
    },
  });

  const sender = new Sender({
    outbox,
    timeline,
    connection,
    me: () => ({ id: meId, name: me, guest: root.dataset.guest === "true" }),
    onStored: (msg) => showMessage(msg),
  });

  // Messages stored before the last page was left, but never acknowledged, are already shown by
  // the server; everything else left in the outbox is shown as unsent and resent once connected.
  for (const li of list.querySelectorAll(":scope > li.message[data-nonce][data-id]")) {
    if (outbox.get(li.dataset.nonce)) outbox.remove(li.dataset.nonce);
  }
  sender.restore();
  timeline.scrollToBottom();

  const replies = wireReplies({
    list,
    timeline,
    form,
    input,
    messagesUrl: root.dataset.messagesUrl,
  });
  const limitOutput = document.getElementById("composer-limit");
  const limit = limitOutput
    ? wireComposerLimit({ input, output: limitOutput, max: Number(list.dataset.maxBody) || 4000 })
    : null;
  markOwnMentions(list, () => me);
  if (root.dataset.readUrl) wireAttention({ root, list, timeline, input, meId, online: () => online });
  const sendButton = form.querySelector('button[type="submit"]');
  // Signed-in readers attach files (the page names the upload URL only for them).
  const attachments = root.dataset.attachmentsUrl
    ? wireAttachments({
        root,
        form,
        input,
        url: root.dataset.attachmentsUrl,
        maxBytes: Number(root.dataset.maxFileBytes) || null,
        maxFiles: Number(root.dataset.maxFiles) || null,
        // Nothing leaves while a file is on its way (the message would go without it).
        onChange: () => {
          if (sendButton && !input.readOnly) sendButton.disabled = attachments?.busy() ?? false;
        },
      })
    : null;
  wireLightbox(list);
  wireComposer({ form, input, sender, replies, limit, attachments, send: (frame) => connection.send(frame) });
  document.getElementById("reconnect-now")?.addEventListener("click", () => connection.reconnectNow());
  wireOlderHistory({ list, timeline, messagesUrl: root.dataset.messagesUrl });
  wireMessageActions({
    list,
    timeline,
    meId,
    messagesUrl: root.dataset.messagesUrl,
    composer: input,
    onReply: (li) => replies.start(li),
  });
  wireDirectMessages({
    form: /** @type {HTMLFormElement|null} */ (document.getElementById("direct-form")),
    presence,
    list,
    meId,
  });
  // Again: the message actions above add to every item, so the bottom moved since.
  timeline.scrollToBottom();
  connection.start();
  openSearchTarget(list);
  return { connection, timeline, sender };
}

/**
 * Signed-in readers: read position and divider, @ autocomplete, and the personal feed for
 * desktop notifications of mentions elsewhere (or here while the tab is hidden).
 */
function wireAttention({ root, list, timeline, input, meId, online }) {
  const lastRead = root.dataset.lastReadId;
  wireReadMarker({
    list,
    timeline,
    readUrl: root.dataset.readUrl,
    lastReadId: lastRead ? Number(lastRead) : null,
    meId,
    button: document.getElementById("jump-newest"),
  });
  wireMentionAutocomplete({ input, peopleUrl: root.dataset.peopleUrl, online, meId });
  wireNotificationButton(document.getElementById("enable-notifications"));
  let muted = root.dataset.muted === "true";
  const muteButton = document.getElementById("mute-room");
  const showMute = () => {
    muteButton.textContent = muted ? "Unmute notifications" : "Mute notifications";
    muteButton.setAttribute("aria-pressed", String(muted));
  };
  muteButton?.addEventListener("click", async () => {
    const response = await fetch(root.dataset.muteUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ muted: !muted }),
    });
    if (response.ok) muted = (await response.json()).muted;
    showMute();
  });
  if (muteButton) showMute();
  const room = root.dataset.room;
  const mutedRooms = new Set();
  const feed = new Feed({
    ticketUrl: root.dataset.feedTicketUrl,
    // (Re)connected: which rooms are muted, as of now.
    onHello: async () => {
      try {
        const response = await fetch(root.dataset.attentionUrl, { credentials: "same-origin" });
        if (!response.ok) return;
        mutedRooms.clear();
        for (const state of (await response.json()).rooms || []) {
          if (state.muted) mutedRooms.add(state.room);
        }
      } catch {
        // Muted rooms stay as last known.
      }
    },
    onFrame: (event) => {
      if (event.type === "unread" && typeof event.room === "string") {
        if (event.muted) mutedRooms.add(event.room);
        else mutedRooms.delete(event.room);
        if (event.room === room) muted = Boolean(event.muted);
        if (muteButton) showMute();
      }
      maybeNotify(event, {
        meId,
        currentRoom: room,
        muted: event.room === room ? muted : mutedRooms.has(event.room),
        roomUrl: (slug) => new URL(`../${slug}/`, window.location.href).toString(),
      });
    },
  });
  feed.start();
}

/** Enter sends (as a reply while one is being written), Shift+Enter adds a line, typing notices
 * are throttled (on either transport). With files attached (all uploaded), the text may be
 * empty; while one still uploads, nothing is sent (and the reader is told why). */
function wireComposer({ form, input, sender, replies, limit, attachments, send }) {
  let lastTyping = 0;
  const submit = () => {
    const body = input.value.trim();
    if (input.readOnly) return;
    if (attachments?.busy()) {
      attachments.clearErrors();
      attachments.say("Not sent yet: wait until the files are uploaded.");
      return;
    }
    const withFiles = attachments?.hasFiles() ?? false;
    if (!body && !withFiles) return;
    // Over the server's limit: refused here with the reason shown, the text (and reply) kept.
    if (limit && !limit.allows()) return;
    const files = withFiles ? attachments.take() : [];
    attachments?.clearErrors();
    const target = replies.take();
    const entry = sender.submit(body, target?.id ?? null, files);
    replies.decoratePending(entry.nonce, target);
    // lastTyping is kept: the server drops typing notices closer than 2 s anyway.
    input.value = "";
    limit?.update();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    // isComposing: Enter that confirms an IME composition must not send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", () => {
    const now = Date.now();
    if (!input.value.trim() || now - lastTyping < TYPING_EVERY_MS) return;
    if (send({ type: "typing" })) lastTyping = now;
  });
}

/** Scrolling to the top (or the button above the list) loads older messages. */
function wireOlderHistory({ list, timeline, messagesUrl }) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "load-older";
  button.textContent = "Load older messages";
  list.before(button);
  let loading = false;
  /** Unknown until the first page of older messages answers. */
  let hasMore = null;
  const pageSize = Number(list.dataset.pageSize) || OLDER_PAGE;

  const refresh = () => {
    // Before asking, a list shorter than one page (server-rendered or hello) is the whole room.
    const more = hasMore ?? timeline.byId.size >= pageSize;
    button.hidden = timeline.lowestId() === null || !more;
    button.disabled = loading;
    button.textContent = loading ? "Loading older messages…" : "Load older messages";
    list.dataset.historyComplete = String(!more);
  };

  const load = async () => {
    const lowest = timeline.lowestId();
    if (loading || hasMore === false || lowest === null || !messagesUrl) return;
    loading = true;
    refresh();
    try {
      const page = await fetchOlder(messagesUrl, lowest, pageSize);
      timeline.prependOlder(page.messages || []);
      hasMore = Boolean(page.has_more) && (page.messages || []).length > 0;
    } catch {
      // Leave hasMore as it was: the reader can scroll up or press the button again.
    } finally {
      loading = false;
      refresh();
    }
  };

  button.addEventListener("click", load);
  list.addEventListener("scroll", () => {
    if (list.scrollTop <= LOAD_OLDER_AT_PX && list.scrollHeight > list.clientHeight) load();
  });
  // The first messages may arrive with the socket's hello; show the button once there are some.
  new MutationObserver(refresh).observe(list, { childList: true });
  refresh();
}

const root = document.getElementById("chat-room");
if (root) startRoom(root);
