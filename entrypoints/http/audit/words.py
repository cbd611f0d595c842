"""What each event and each field value means, in words a person reads: one table per kind.

`SENTENCES` maps an event type to the function that says what happened; a new event (a
complaint, a bounce, a rectification...) adds one entry, and an event without one is still
shown, by its type. The other tables word the closed vocabularies of `schemas.enums` and the
reasons of `ledger.domain.rules.Reason`; a value they lack is shown as it is stored.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from entrypoints.http.pages.i18n import N_

__all__ = ["LABELLED", "SENTENCES", "Words"]

LABELLED = N_("%(label)s: %(value)s")
"""A label and its value, on one line (French puts a space before the colon)."""

CHANNELS = {
    "email": N_("email"),
    "sms": N_("SMS"),
    "phone": N_("phone"),
    "postal": N_("post"),
    "push": N_("push notification"),
}
SOURCES = {
    "web_form": N_("a web form"),
    "api": N_("the API"),
    "import": N_("an import"),
    "unsubscribe_link": N_("an unsubscribe link"),
    "one_click": N_("the one-click unsubscribe button"),
    "mail_client": N_("the mail client"),
    "complaint_loop": N_("a mailbox provider's complaint"),
    "admin": N_("an administrator"),
    "retention": N_("the retention rule"),
    "system": N_("the system"),
    "preference_centre": N_("the preference centre"),
}
REASONS = {
    "unknown_purpose": N_("the purpose is not registered"),
    "erased": N_("the person's data was erased"),
    "objected": N_("the person objected"),
    "restricted": N_("processing is restricted"),
    "unsubscribed": N_("the person unsubscribed"),
    "never_granted": N_("consent was never given"),
    "withdrawn": N_("consent was withdrawn"),
    "double_opt_in_pending": N_("double opt-in not confirmed yet"),
    "expired": N_("consent lapsed after a long inactivity"),
    "reconsent_required": N_("a newer policy version asks for consent again"),
    "complained": N_("the person complained about a message"),
}
WITHDRAWAL_REASONS = {
    "user_request": N_("at the person's request"),
    "complaint": N_("after a complaint"),
    "bounce": N_("the address does not receive mail"),
    "admin": N_("by an administrator"),
    "lapsed": N_("lapsed after a long inactivity"),
    "reconsent_required": N_("a newer policy version asks for consent again"),
    "other": N_("another reason"),
}
METHODS = {
    "one_click_post": N_("one click in the mail client (RFC 8058)"),
    "link_page": N_("the unsubscribe page"),
    "mail_client": N_("the mail client"),
    "complaint_loop": N_("a complaint"),
    "complaint": N_("a complaint"),
    "admin": N_("an administrator"),
    "preference_centre": N_("the preference centre"),
}
RIGHTS = {
    "access": N_("access (art. 15)"),
    "rectification": N_("rectification (art. 16)"),
    "erasure": N_("erasure (art. 17)"),
    "restriction": N_("restriction (art. 18)"),
    "objection": N_("objection (art. 21)"),
    "portability": N_("portability (art. 20)"),
    "post_mortem": N_("post-mortem directive"),
}
OUTCOMES = {
    "fulfilled": N_("answered"),
    "refused": N_("refused"),
    "withdrawn": N_("withdrawn by the person"),
}
INTERACTIONS = {
    "click": N_("a click"),
    "reply": N_("a reply"),
    "purchase": N_("a purchase"),
    "login": N_("a login"),
    "form_submit": N_("a form sent"),
}


@dataclass(frozen=True, slots=True)
class Words:
    """Messages of one language: ``say`` translates and fills, ``when`` gives Paris time."""

    lang: str
    gettext: Callable[[str], str]
    moment: Callable[[datetime | None], str]
    purpose_names: Mapping[str, str]
    """Each purpose's description, the name a person knows it by."""

    def say(self, message: str, **params: object) -> str:
        text = self.gettext(message)
        return text % params if params else text

    def of(self, table: Mapping[str, str], value: object) -> str:
        """A stored value in words, or as stored when the table does not know it."""
        if value is None:
            return ""
        key = str(getattr(value, "value", value))
        return self.gettext(table[key]) if key in table else key

    def purpose(self, slug: object) -> str:
        return self.purpose_names.get(str(slug), str(slug))

    def purposes(self, slugs: tuple[str, ...] | list[str]) -> str:
        if not slugs:
            return self.say(N_("every purpose"))
        return ", ".join(f"« {self.purpose(s)} »" for s in slugs)


Sentence = Callable[[dict[str, Any], Words], str]


def _consent(event: dict[str, Any], w: Words) -> str:
    purpose, channel = w.purpose(event["purpose"]), w.of(CHANNELS, event["channel"])
    if event.get("double_opt_in") == "pending":
        return w.say(
            N_("Consent asked for “%(purpose)s” (%(channel)s), waiting for the double opt-in"),
            purpose=purpose,
            channel=channel,
        )
    return w.say(
        N_("Consent given for “%(purpose)s” (%(channel)s)"), purpose=purpose, channel=channel
    )


def _confirmed(event: dict[str, Any], w: Words) -> str:
    return w.say(
        N_("Double opt-in confirmed for “%(purpose)s” (%(channel)s)"),
        purpose=w.purpose(event["purpose"]),
        channel=w.of(CHANNELS, event["channel"]),
    )


def _withdrawn(event: dict[str, Any], w: Words) -> str:
    return w.say(
        N_("Consent withdrawn for “%(purpose)s” (%(channel)s): %(reason)s"),
        purpose=w.purpose(event["purpose"]),
        channel=w.of(CHANNELS, event["channel"]),
        reason=w.of(WITHDRAWAL_REASONS, event["reason"]),
    )


def _unsubscribed(event: dict[str, Any], w: Words) -> str:
    # The door used (one click, the page, the preference centre...) is the event's source,
    # said after this; its evidence gives the method as recorded.
    if event.get("purpose"):
        return w.say(N_("Unsubscribed from “%(purpose)s”"), purpose=w.purpose(event["purpose"]))
    if event.get("list_id"):
        return w.say(N_("Unsubscribed from the list “%(list)s”"), list=event["list_id"])
    return w.say(N_("Unsubscribed from every marketing email"))


def _objected(event: dict[str, Any], w: Words) -> str:
    if event.get("all_direct_marketing"):
        return w.say(N_("Objection to all direct marketing (GDPR art. 21)"))
    return w.say(
        N_("Objection to “%(purpose)s” (GDPR art. 21)"), purpose=w.purpose(event["purpose"])
    )


def _restricted(event: dict[str, Any], w: Words) -> str:
    return w.say(
        N_("Processing restricted (GDPR art. 18) for %(purposes)s"),
        purposes=w.purposes(event["purposes"]),
    )


def _lifted(event: dict[str, Any], w: Words) -> str:
    return w.say(
        N_("Restriction of processing lifted for %(purposes)s"),
        purposes=w.purposes(event["purposes"]),
    )


def _request_opened(event: dict[str, Any], w: Words) -> str:
    return w.say(
        N_("Rights request received: %(right)s, to answer by %(due)s"),
        right=w.of(RIGHTS, event["right"]),
        due=w.moment(datetime.fromisoformat(event["due_at"])),
    )


def _request_extended(event: dict[str, Any], w: Words) -> str:
    return w.say(
        N_("Deadline of the rights request moved to %(due)s: %(reason)s"),
        due=w.moment(datetime.fromisoformat(event["due_at"])),
        reason=event["reason"],
    )


def _request_closed(event: dict[str, Any], w: Words) -> str:
    return w.say(N_("Rights request closed: %(outcome)s"), outcome=w.of(OUTCOMES, event["outcome"]))


def _erased(event: dict[str, Any], w: Words) -> str:
    return w.say(N_("Personal data erased (GDPR art. 17): the person's data key was destroyed"))


def _interaction(event: dict[str, Any], w: Words) -> str:
    return w.say(N_("Sign of activity: %(kind)s"), kind=w.of(INTERACTIONS, event["kind"]))


def _accepted(event: dict[str, Any], w: Words) -> str:
    return w.say(N_("Privacy policy version %(version)s accepted"), version=event["version"])


SENTENCES: dict[str, Sentence] = {
    "ConsentGranted": _consent,
    "ConsentConfirmed": _confirmed,
    "ConsentWithdrawn": _withdrawn,
    "UnsubscribeClicked": _unsubscribed,
    "ObjectionRecorded": _objected,
    "ProcessingRestricted": _restricted,
    "RestrictionLifted": _lifted,
    "RightsRequestOpened": _request_opened,
    "RightsRequestExtended": _request_extended,
    "RightsRequestClosed": _request_closed,
    "SubjectErased": _erased,
    "InteractionRecorded": _interaction,
    "PolicyVersionAccepted": _accepted,
}
"""What happened, by event type (the event as its JSON fields)."""


def what_happened(event: dict[str, Any], w: Words) -> str:
    sentence = SENTENCES.get(event["event_type"])
    if sentence is None:
        return w.say(N_("Event “%(type)s” recorded"), type=event["event_type"])
    return sentence(event, w)


def how(event: dict[str, Any], w: Words) -> str:
    """Through which form, or from which source, the event came."""
    evidence = event.get("evidence") or {}
    if evidence.get("form_id"):
        if evidence.get("form_version"):
            return w.say(
                N_("through the form %(form)s v%(version)s"),
                form=evidence["form_id"],
                version=evidence["form_version"],
            )
        return w.say(N_("through the form %(form)s"), form=evidence["form_id"])
    return w.say(N_("through %(source)s"), source=w.of(SOURCES, event["source"]))


def sentence(event: dict[str, Any], w: Words) -> str:
    """« Consentement donné pour « Lettre mensuelle » (e-mail) par le formulaire inscription
    v3, le 12 mars 2025 à 14:02 (heure de Paris). »"""
    return w.say(
        N_("%(what)s %(how)s, on %(when)s (Paris time)."),
        what=what_happened(event, w),
        how=how(event, w),
        when=w.moment(datetime.fromisoformat(event["occurred_at"])),
    )
