"""Where a message goes and who sent one, the same for every platform: an `Address` is a place
in a chat (a channel, or a thread under a root message in it), a `Person` someone who wrote or
clicked — with what the platform shows for them and whether they may act on incidents."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Address:
    """A channel or a thread in a chat. `workspace` is Slack's team or Teams' team (the tenant,
    for a Teams chat); `thread` the root message of a thread ("" for the channel itself).
    `tenant` and `service_url` are what Teams needs to reach the place; Slack leaves them empty."""

    platform: str
    org_id: int
    workspace: str
    channel: str
    thread: str = ""
    tenant: str = ""
    service_url: str = ""

    @property
    def memory(self) -> str:
        """The agent's memory key for this place (`slack:T1:C1:1700000000.000100`)."""
        return f"{self.platform}:{self.workspace}:{self.channel}:{self.thread}"

    def in_thread(self, root: str) -> Address:
        """The thread under the message `root` in this channel."""
        return replace(self, thread=root)

    @property
    def whole_channel(self) -> Address:
        return replace(self, thread="")


@dataclass(frozen=True)
class Person:
    """Someone in a chat: their platform id, the name to show, how to mention them
    (`<@U123>` in Slack, the display name in Teams), and whether the platform's responder
    setting lets them act (move an incident, judge a hypothesis, choose a channel)."""

    id: str
    name: str
    mention: str
    may_act: bool = True


NOBODY = Person(id="", name="chat", mention="chat", may_act=False)
