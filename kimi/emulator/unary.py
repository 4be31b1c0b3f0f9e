"""Unary Connect endpoints (plain JSON in/out) of the chat host."""

from __future__ import annotations

from aiohttp import web

from .catalog import catalog
from .chat import pick
from .errors import connect_error
from .state import ChatRecord, EmulatorState, MessageRecord, now_rfc3339

CHAT = "/apiv2/kimi.chat.v1.ChatService/"
GATEWAY_CHAT = "/apiv2/kimi.gateway.chat.v1.ChatService/"


def own_chat(state: EmulatorState, sub: str, chat_id) -> ChatRecord | web.Response:
    chat = state.chats.get(chat_id) if isinstance(chat_id, str) else None
    if chat is None or chat.deleted:
        return connect_error(404, "not_found", "chat not found")
    if chat.sub != sub:
        return connect_error(403, "permission_denied", "chat belongs to another user")
    return chat


def chat_json(chat: ChatRecord) -> dict:
    return {"id": chat.id, "name": chat.name, "createTime": chat.create_time,
            "updateTime": chat.update_time}


def message_json(message: MessageRecord) -> dict:
    blocks = []
    if message.think:
        blocks.append({"id": "1", "messageId": message.id, "think": {"content": message.think}})
    blocks.append({"id": str(len(blocks) + 1), "messageId": message.id,
                   "text": {"content": message.text}})
    blocks += [{"messageId": message.id, "file": {"id": f}} for f in message.files]
    return {"id": message.id, "parentId": message.parent_id, "role": message.role,
            "status": message.status, "blocks": blocks, "createTime": message.create_time}


def page(items: list, body: dict) -> tuple[list, str]:
    size = pick(body, "page_size") or 20
    token = pick(body, "page_token") or body.get("cursor") or "0"
    start = int(token) if str(token).isdigit() else 0
    end = start + int(size)
    return items[start:end], (str(end) if end < len(items) else "")


def delete_chat(state, sub, body):
    chat = own_chat(state, sub, pick(body, "chat_id"))
    if isinstance(chat, web.Response):
        return chat
    chat.deleted = True
    state.deleted.append(chat.id)
    return {}


def batch_delete(state, sub, body):
    ids = pick(body, "chat_ids") or []
    if not isinstance(ids, list):
        return connect_error(400, "invalid_argument", "chat_ids must be a list")
    for chat_id in ids:
        chat = state.chats.get(chat_id) if isinstance(chat_id, str) else None
        if chat is not None and not chat.deleted and chat.sub == sub:
            chat.deleted = True
            state.deleted.append(chat.id)
    return {}


def list_chats(state, sub, body):
    chats = [c for c in state.chats.values() if c.sub == sub and not c.deleted]
    chats.sort(key=lambda c: c.update_time, reverse=True)
    items, token = page(chats, body)
    out = []
    for chat in items:
        last = next((m for m in reversed(chat.messages) if m.role == "assistant"), None)
        out.append({**chat_json(chat), "messageContent": last.text[:100] if last else ""})
    return {"chats": out, "nextPageToken": token}


def get_chat(state, sub, body):
    chat = own_chat(state, sub, pick(body, "chat_id"))
    return chat if isinstance(chat, web.Response) else {"chat": chat_json(chat)}


def list_messages(state, sub, body):
    chat = own_chat(state, sub, pick(body, "chat_id"))
    if isinstance(chat, web.Response):
        return chat
    items, token = page(list(reversed(chat.messages)), body)
    return {"messages": [message_json(m) for m in items], "nextPageToken": token}


def cancel_chat(state, sub, body):
    state.cancelled.append(body)
    chat = own_chat(state, sub, pick(body, "chat_id"))
    if isinstance(chat, web.Response):
        return chat
    event = state.streams.get(chat.id)
    if event is not None:
        event.set()
    return {}


def available_models(state, sub, body):
    if state.models_fail:
        return connect_error(503, "unavailable", "model catalog unavailable")
    return catalog(state.catalog)


def get_subscription(state, sub, body):
    return {"subscription": {
        "userId": sub, "userName": f"Emulated {sub}", "email": f"{sub}@example.com",
        "goods": {"title": "Adagio", "membershipLevel": "LEVEL_FREE"},
        "status": "STATUS_ACTIVE", "currentStartTime": now_rfc3339()}}


def current_user(state, sub, body):
    return {"user": {"id": sub, "nickname": f"Emulated {sub}", "avatar": "", "phone": {},
                     "region": "REGION_OVERSEA", "globalId": "g-" + sub},
            "workspace": {"user": {}}}


UNARY = {
    CHAT + "DeleteChat": delete_chat,
    CHAT + "BatchDeleteChats": batch_delete,
    CHAT + "ListChats": list_chats,
    GATEWAY_CHAT + "GetChat": get_chat,
    GATEWAY_CHAT + "ListMessages": list_messages,
    GATEWAY_CHAT + "CancelChat": cancel_chat,
    "/apiv2/kimi.gateway.config.v1.ConfigService/GetAvailableModels": available_models,
    "/apiv2/kimi.gateway.order.v1.SubscriptionService/GetSubscription": get_subscription,
    "/apiv2/kimi.gateway.account.v1.UserService/GetCurrentUser": current_user,
}
