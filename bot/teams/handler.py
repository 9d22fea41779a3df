"""The Teams bot: turns activities into operations and answers in Teams.

Every inbound activity stores who wrote and where (so later features can write to them proactively); a
message is processed once per activity id (Teams retries after 15 s); text goes through the command grammar,
or through Claude when a key is configured and the text is not a command; card actions run the same
operations and update the card in place.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from botbuilder.core import ActivityHandler, BotAdapter, InvokeResponse, MessageFactory, TurnContext
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    Attachment,
    ChannelAccount,
    ConversationReference,
)

from bot.cards import ADAPTIVE_CARD_CONTENT_TYPE, welcome_card
from bot.cards.markdown import literal
from bot.delegating import Delegator
from bot.grammar import GrammarError, UnknownCommand, parse
from bot.llm import Assistant, LLMUnavailable
from bot.operations import Caller, Context, Registry, Reply, UnknownOperation, default_registry
from bot.operations.base import ASSISTANT, IN_TEAMS
from bot.recommending import ClaudeRecommender
from bot.settings import Settings
from bot.teams.content import CardContent
from bot.text import messages
from planner.domain.approvals import ApprovalRequest, is_person
from planner.domain.governance import DecisionRecord
from planner.domain.messages import Message, MessageKind
from planner.domain.people import printable
from planner.domain.questions import code_answer
from planner.ports import Clock, utcnow
from planner.services.approvals import tenants_awaiting_resume
from planner.services.tenants import Tenants
from planner.store import AlreadyProcessed, Store

logger = logging.getLogger(__name__)
LOCAL_TENANT = "local"
REMEMBER_EVERY_SECONDS = 600.0
CONVERSATION_KINDS = {"personal": "personal", "groupChat": "groupChat", "channel": "channel"}
MAX_MESSAGE_CHARS = 4000
"""The longest message the bot reads (a long Teams message); a longer one is refused before it is read."""


def tenant_of(activity: Activity) -> str | None:
    """The Teams tenant id of an activity (conversation first, then channel data)."""
    tenant = getattr(activity.conversation, "tenant_id", None) if activity.conversation else None
    if not tenant and isinstance(activity.channel_data, Mapping):
        tenant = (activity.channel_data.get("tenant") or {}).get("id")
    return tenant or None


def user_id_of(account: ChannelAccount | None) -> str:
    if account is None:
        return ""
    return account.aad_object_id or account.id or ""


def time_zone_of(activity: Activity) -> str | None:
    if activity.local_timezone:
        return str(activity.local_timezone)
    for entity in activity.entities or []:
        props = entity.additional_properties if hasattr(entity, "additional_properties") else {}
        if getattr(entity, "type", None) == "clientInfo" and props.get("timezone"):
            return str(props["timezone"])
    return None


def conversation_kind(activity: Activity) -> str:
    kind = getattr(activity.conversation, "conversation_type", None) if activity.conversation else None
    return CONVERSATION_KINDS.get(kind or "", "personal")


def printable_activity(value: Any) -> Any:
    """An activity as JSON with NUL and the other control characters dropped from every text in it, keys too: its
    text, names, mentions and card inputs are stored, and PostgreSQL refuses NUL in any of them."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(key): printable_activity(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [printable_activity(inner) for inner in value]
    return value


def message_text(activity: Activity) -> tuple[str, dict[str, str]]:
    """The text without the bot's @mention, other mentions as `@Name`, and those names to their user ids.

    A mention is named as Teams names the person it points at (`mentioned.name`), not by the words shown for it,
    which the sender can change; an operation names the person from the directory by their id in any case."""
    bot_id = activity.recipient.id if activity.recipient else ""
    text = activity.text or ""
    mentions: dict[str, str] = {}
    for entity in activity.entities or []:
        if (entity.type or "").lower() != "mention":
            continue
        props = getattr(entity, "additional_properties", None) or {}
        mentioned = props.get("mentioned") if isinstance(props.get("mentioned"), Mapping) else None
        mention_text = str(props.get("text") or "")
        if mentioned is None:
            continue
        if mentioned.get("id") == bot_id:
            text = text.replace(mention_text, " ") if mention_text else text
            continue
        name = " ".join(str(mentioned.get("name") or "").split()) or re.sub(r"</?at>", "", mention_text).strip()
        if mention_text:
            text = text.replace(mention_text, f"@{name}")
        user = str(mentioned.get("aadObjectId") or mentioned.get("id") or "")
        if name and user:
            mentions[name.casefold()] = user
    text = re.sub(r"</?at>", "", text)  # a mention whose entity is missing
    return " ".join(text.split()), mentions


def looks_like_an_answer(text: str) -> bool:
    """A code such as 123456 (or 123 456) or `cancel`: the only replies that may answer a waiting question."""
    return text.strip().lower() == "cancel" or code_answer(text) is not None


class ChiefOfStaffBot(ActivityHandler):
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        registry: Registry | None = None,
        assistant: Assistant | None = None,
        clock: Clock = utcnow,
        delegator: Delegator | None = None,
        tenants: Tenants | None = None,
    ) -> None:
        self.store = store
        self.tenants = tenants or Tenants(store)
        """Each tenant's services (the composition root's; a bot made alone makes its own)."""
        self.settings = settings
        self.registry = registry or default_registry()
        self.assistant = assistant
        self.recommender = ClaudeRecommender(assistant.client, model=assistant.model) if assistant else None
        """KPI recommendations by Claude when a key is set; None leaves them to the rules."""
        self.clock = clock
        self.delegator = delegator
        self.adapter: BotAdapter | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._remembered: dict[tuple[str, str, str], tuple[tuple[str, str, str | None, object], float]] = {}

    # ---- the turn ------------------------------------------------------------------------------------------

    async def on_turn(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        tenant = tenant_of(activity) or (LOCAL_TENANT if self.settings.local_mode else None)
        if tenant is None:
            logger.warning("ignored a %s activity without a tenant id", activity.type)
            return
        turn_context.turn_state["cos.tenant"] = tenant
        await self._remember(turn_context, tenant)
        key = self._activity_key(turn_context)
        if key is None:
            await super().on_turn(turn_context)
            return
        # Teams delivers an activity again when it had no answer in time. What a message or card action writes is
        # written once: its first write transaction records the activity's key in the same commit (`receipt`), so
        # a replica that dies mid-turn leaves either nothing (the retry runs it) or all of its first write, and a
        # retry of a turn that wrote stops at its first write. A retry of a turn that only read answers again.
        turn_context.turn_state["cos.activity_key"] = key
        try:
            with self.store.receipt(tenant, key):
                await super().on_turn(turn_context)
        except AlreadyProcessed:
            await self._answer_retry(turn_context)

    @staticmethod
    def _activity_key(turn_context: TurnContext) -> str | None:
        """The key of a message or card action, which Teams may deliver more than once; None for other activities."""
        activity = turn_context.activity
        if activity.type not in (ActivityTypes.message, ActivityTypes.invoke) or not activity.id:
            return None
        return f"activity:{activity.conversation.id}:{activity.id}"

    @staticmethod
    async def _answer_retry(turn_context: TurnContext) -> None:
        """Tell the person their message or click was done the first time (its answer may have been lost with a
        replica that stopped right after doing it)."""
        activity = turn_context.activity
        logger.info("activity %s was already processed: not doing it again", activity.id)
        if activity.type == ActivityTypes.invoke:
            turn_context.turn_state[BotAdapter._INVOKE_RESPONSE_KEY] = Activity(
                type=ActivityTypes.invoke_response, value=_message_answer(messages.ALREADY_DONE)
            )
        else:
            await turn_context.send_activity(messages.ALREADY_DONE)

    async def _remember(self, turn_context: TurnContext, tenant: str) -> None:
        """Store who wrote and where, unless this replica stored exactly that a moment ago."""
        activity = turn_context.activity
        directory = self.tenants(tenant).directory
        user = user_id_of(activity.from_property)
        is_person = bool(user and activity.from_property and activity.from_property.role != "bot")
        name = (activity.from_property.name or user) if is_person and activity.from_property else ""
        zone = time_zone_of(activity)
        reference = None
        if activity.conversation and activity.conversation.id and activity.service_url:
            reference = TurnContext.get_conversation_reference(activity)
        # The reference names the activity it came from; that changes every message and matters to no one later.
        # Its other fields are compared as models (msrest compares their attributes): serializing them every turn
        # to compare cost ten times as much.
        stable = {k: v for k, v in vars(reference).items() if k != "activity_id"} if reference is not None else None
        fingerprint = (user, name, zone, stable)
        key = (tenant, user, activity.conversation.id if activity.conversation else "")
        now = time.monotonic()
        seen = self._remembered.get(key)
        if seen is not None and seen[0] == fingerprint and now - seen[1] < REMEMBER_EVERY_SECONDS:
            return
        if is_person:
            await directory.remember_person(user, name, zone)
        if reference is not None:
            await directory.remember_conversation(
                activity.conversation.id,
                kind=conversation_kind(activity),
                address=reference.serialize(),
                user_id=user or None,
            )
        if len(self._remembered) > 10_000:
            self._remembered.clear()
        self._remembered[key] = (fingerprint, now)

    def _caller(self, turn_context: TurnContext, mentions: Mapping[str, str] | None = None) -> Caller:
        activity = turn_context.activity
        user = user_id_of(activity.from_property)
        return Caller(
            tenant_id=turn_context.turn_state["cos.tenant"],
            user_id=user,
            name=(activity.from_property.name if activity.from_property else None) or user,
            time_zone=time_zone_of(activity),
            conversation_kind=conversation_kind(activity),
            mentions=dict(mentions or {}),
            is_admin=self.settings.is_admin(user),
        )

    # ---- installs and members ------------------------------------------------------------------------------

    async def on_members_added_activity(self, members_added: list[ChannelAccount], turn_context: TurnContext) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        if any(member.id == bot_id for member in members_added):
            await self._welcome(turn_context, None)
        elif conversation_kind(turn_context.activity) == "personal":
            await self._welcome(turn_context, members_added[0].name if members_added else None)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._welcome(turn_context, None)

    async def on_installation_update_remove(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        directory = self.tenants(turn_context.turn_state["cos.tenant"]).directory
        await directory.forget_conversation(activity.conversation.id)

    async def _welcome(self, turn_context: TurnContext, name: str | None) -> None:
        # Teams announces one install several ways (conversationUpdate, installationUpdate): welcome once.
        directory = self.tenants(turn_context.turn_state["cos.tenant"]).directory
        if not await directory.first_welcome(turn_context.activity.conversation.id):
            return
        today = self.clock().date()
        card = welcome_card(name=name, is_channel=conversation_kind(turn_context.activity) == "channel", today=today)
        await turn_context.send_activity(_card_activity(card, messages.WELCOME_TEXT))

    # ---- messages ------------------------------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if isinstance(activity.value, Mapping) and activity.value.get("verb"):
            reply = await self._card_action(turn_context, activity.value)
            if reply.card_update is not None and activity.reply_to_id:
                updated = _card_activity(reply.card_update)
                updated.id = activity.reply_to_id
                await turn_context.update_activity(updated)
            elif reply.card_update is not None:
                await turn_context.send_activity(_card_activity(reply.card_update))
            await self._send(turn_context, Reply(text=reply.text, cards=reply.cards))
            return
        if len(activity.text or "") > MAX_MESSAGE_CHARS:
            await turn_context.send_activity(messages.too_long(MAX_MESSAGE_CHARS))
            return
        text, mentions = message_text(activity)
        caller = self._caller(turn_context, mentions)
        if not text:
            await turn_context.send_activity(messages.EMPTY_MESSAGE)
            return
        if caller.conversation_kind == "personal" and looks_like_an_answer(text):
            answered = await self._answer_question(caller, text)
            if answered is not None:
                await turn_context.send_activity(answered)
                return
        try:
            command = parse(text)
        except UnknownCommand as unknown:
            # An agent's question (A2A input-required) takes a free-text answer: what is no command answers it.
            if caller.conversation_kind == "personal":
                answered = await self._answer_question(caller, text)
                if answered is not None:
                    await turn_context.send_activity(answered)
                    return
            if self.assistant is not None:
                await self._start_assistant(turn_context, caller, text)
                return
            await turn_context.send_activity(messages.unknown_command(unknown.word, unknown.suggestion))
            return
        except GrammarError as error:
            operation = error.operation
            usage = self.registry.get(operation).usage if operation is not None and operation in self.registry else ()
            await turn_context.send_activity(messages.refused(str(error), usage))
            return
        reply = await self.registry.run(command.operation, self._context(caller), command.args)
        await self._send(turn_context, reply)

    def _context(self, caller: Caller, approval: ApprovalRequest | None = None) -> Context:
        return Context(
            self.tenants,
            caller,
            clock=self.clock,
            delegator=self.delegator,
            resume=self._resume,
            record=self._record,
            recommender=self.recommender,
            approval_expiry=self.settings.approval_expiry,
            approval=approval,
        )

    async def _record(self, record: DecisionRecord) -> object:
        """Every decision an operation makes goes to the tenant's hash-chained decision log."""
        return await self.tenants(record.tenant_id).decisions.record(record)

    async def _resume(self, context: Context, request: ApprovalRequest) -> str | None:
        """Run what an approval held: a delegation, or an operation with its arguments, as the person who asked
        for it (never as the approver), who then hears how it went; what it said is for the approver."""
        return await self._carry_out(request)

    async def _carry_out(self, request: ApprovalRequest) -> str | None:
        if "outbox" in request.resume:
            released = await self.tenants.outbox.release(
                request.tenant_id, int(request.resume["outbox"]), approval=request.id
            )
            return messages.HELD_MESSAGE_RELEASED if released else messages.HELD_MESSAGE_GONE
        if "delegation" in request.resume and self.delegator is not None:
            delegation_id = int(request.resume["delegation"])
            if await self.delegator.resume(request.tenant_id, delegation_id, request):
                return f"Delegation D{delegation_id} goes ahead."
            return f"Delegation D{delegation_id} was already released."
        operation = request.resume.get("operation")
        if not (isinstance(operation, str) and operation in self.registry and is_person(request.requester)):
            return None
        requester = await self._requester(request)
        args = dict(request.resume.get("args") or {})
        reply = await self.registry.run(operation, self._context(requester, approval=request), args)
        said = reply.text or ("done." if reply.ok else "it could not run.")
        if request.requester != request.decided_by:
            text = messages.approved_and_run(request.ref, said)
            notice = Message(recipient=request.requester, kind=MessageKind.NOTICE, payload={"text": text})
            await self.tenants.outbox.fire(request.tenant_id, f"resumed:{request.id}", [notice])
        return reply.text or None

    async def _requester(self, request: ApprovalRequest) -> Caller:
        """The person an approved request was asked by, as the bot knows them now (and how they asked)."""
        user = request.requester
        name = (await self.tenants(request.tenant_id).directory.names({user})).get(user)
        via = request.resume.get("via")
        return Caller(
            tenant_id=request.tenant_id,
            user_id=user,
            name=name or user,
            is_admin=self.settings.is_admin(user),
            via=via if via in (IN_TEAMS, ASSISTANT) else IN_TEAMS,
            model=self.assistant.model if self.assistant is not None and via == ASSISTANT else "",
        )

    async def resume_approved(self) -> int:
        """Run the approved operations nobody took up (the process that heard the approval stopped first, or
        starting one failed): once each, as the person who asked, who then hears how it went. Approved
        delegations are the delegator's (`Delegator.settle_held`)."""
        resumed = 0
        for tenant_id in await tenants_awaiting_resume(self.store):
            approvals = self.tenants(tenant_id).approvals
            for request in await approvals.awaiting_resume():
                if "outbox" not in request.resume and (
                    "operation" not in request.resume or not is_person(request.requester)
                ):
                    continue
                claimed = await approvals.claim_resume(request.id)
                if claimed is None:
                    continue  # another replica took it
                try:
                    await self._carry_out(claimed)
                except Exception:
                    await approvals.release_resume(claimed.id)
                    logger.exception(
                        "resuming %s of tenant %s failed; the next tick tries again", claimed.ref, tenant_id
                    )
                    continue
                resumed += 1
        return resumed

    async def _answer_question(self, caller: Caller, text: str) -> str | None:
        """Pass the reply to a question a job is waiting on (a 2FA code); None when nothing is waiting."""
        asked = self.tenants(caller.tenant_id).questions
        question = await asked.open_for(caller.user_id)
        code = code_answer(text)
        if question is None:
            # A code nobody waits for is not a command either, and is never repeated back.
            return messages.NO_QUESTION_WAITING if code is not None and code.isdigit() else None
        if text.strip().lower() == "cancel":
            await asked.cancel(question.id)
            return messages.QUESTION_CANCELLED
        # A code typed in groups is one code; anything else is the person's answer as they wrote it (an agent's
        # free-text question).
        answer = code if code is not None else text.strip()
        if answer and await asked.answer(question.id, answer):
            return messages.ANSWER_PASSED_ON
        return messages.QUESTION_EXPIRED

    async def _send(self, turn_context: TurnContext, reply: Reply) -> None:
        activities: list[Activity] = []
        if reply.text and not reply.cards:
            activities.append(MessageFactory.text(reply.text))
        for index, card in enumerate(reply.cards):
            activities.append(_card_activity(card, reply.text if index == 0 else None))
        if activities:
            await turn_context.send_activities(activities)

    # ---- card actions --------------------------------------------------------------------------------------

    async def _card_action(self, turn_context: TurnContext, data: Mapping[str, Any]) -> Reply:
        verb = str(data.get("verb") or "")
        args = {k: v for k, v in data.items() if k != "verb"} | {"from_card": True}
        try:
            operation = self.registry.get(verb)
        except UnknownOperation as error:
            return Reply(text=messages.CARD_ACTION_REFUSED.format(reason=error), ok=False)
        return await self.registry.run(
            operation.name,
            self._context(self._caller(turn_context)),
            args,
        )

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse | None:
        activity = turn_context.activity
        if activity.name != "adaptiveCard/action":
            return await super().on_invoke_activity(turn_context)
        # Handled here rather than in on_adaptive_card_invoke: botbuilder serializes that one's answer twice.
        value: Mapping[str, Any] = activity.value if isinstance(activity.value, Mapping) else {}
        action: Mapping[str, Any] = value["action"] if isinstance(value.get("action"), Mapping) else {}
        if action.get("type") != "Action.Execute":
            return InvokeResponse(status=HTTPStatus.BAD_REQUEST, body={"error": "expected an Action.Execute"})
        data = dict(action.get("data") or {}) if isinstance(action.get("data"), Mapping) else {}
        data["verb"] = action.get("verb") or data.get("verb") or ""
        reply = await self._card_action(turn_context, data)
        if reply.card_update is not None:
            answer = AdaptiveCardInvokeResponse(
                status_code=200, type=ADAPTIVE_CARD_CONTENT_TYPE, value=reply.card_update
            )
            return InvokeResponse(status=HTTPStatus.OK, body=answer)
        if reply.cards:
            await self._send(turn_context, Reply(cards=reply.cards))
        return _message_answer(reply.text or "Done.")

    # ---- natural language, in the background --------------------------------------------------------------

    async def _start_assistant(self, turn_context: TurnContext, caller: Caller, text: str) -> None:
        assert self.assistant is not None
        key = turn_context.turn_state.get("cos.activity_key")
        if key and await self.store.processed(caller.tenant_id, key):
            await self._answer_retry(turn_context)  # not worth asking the model again: the first attempt wrote already
            return
        await turn_context.send_activity(Activity(type=ActivityTypes.typing))
        await turn_context.send_activity(messages.BUSY)
        reference = TurnContext.get_conversation_reference(turn_context.activity)
        task = asyncio.create_task(self._assist(reference, caller, text))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _assist(self, reference: ConversationReference, caller: Caller, text: str) -> None:
        assert self.assistant is not None
        context = self._context(caller)
        try:
            reply = await self.assistant.handle(context, text, conversation=reference.conversation.id)
        except LLMUnavailable as unavailable:
            reply = await self._fallback(context, text, str(unavailable))
        except AlreadyProcessed:
            return  # another attempt at this message did it
        except Exception:
            logger.exception("the assistant failed")
            reply = Reply(text=messages.FAILED, ok=False)
        await self.send_proactive(reference, reply)

    async def _fallback(self, context: Context, text: str, reason: str) -> Reply:
        notice = messages.LLM_UNAVAILABLE.format(reason=literal(reason))
        try:
            command = parse(text)
        except GrammarError:
            return Reply(text=f"{notice} {messages.LLM_NOT_UNDERSTOOD}", ok=False)
        reply = await self.registry.run(command.operation, context, command.args)
        return Reply(text=f"{notice}\n\n{reply.text}".strip(), cards=reply.cards, ok=reply.ok)

    async def send_proactive(self, reference: ConversationReference, reply: Reply) -> None:
        """Write to a conversation outside of a turn (a finished background job)."""
        if self.adapter is None:
            raise RuntimeError("the bot has no adapter to send with: set bot.adapter at start-up")

        async def send(turn_context: TurnContext) -> None:
            await self._send(turn_context, reply)

        await self.adapter.continue_conversation(reference, send, self.settings.app_id or None)

    async def drain(self) -> None:
        """Wait for background work to finish (at shutdown, and in tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        if self.delegator is not None:
            await self.delegator.drain()


def _message_answer(text: str) -> InvokeResponse:
    """The answer to a card's Action.Execute that shows a message instead of a new card."""
    answer = {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": text}
    # botbuilder serializes the body as an msrest model (AdaptiveCardInvokeResponse takes only an object as its
    # value): CardContent carries a plain JSON object as one.
    return InvokeResponse(status=HTTPStatus.OK, body=CardContent(answer))


def _card_activity(card: dict[str, Any], text: str | None = None) -> Activity:
    activity = MessageFactory.attachment(Attachment(content_type=ADAPTIVE_CARD_CONTENT_TYPE, content=CardContent(card)))
    if text:
        activity.text = text
    return activity
