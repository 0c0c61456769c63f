"""Which child legs a phone leg's listing admits, and when a leg lists or reads a summary."""

from __future__ import annotations

from service.analysis.legs import FIRST, LISTED, LegPolicy, admit_children
from service.calls import Call

ACCOUNT = "AC" + "a" * 32


def leg(n: int, to: str, status: str = "completed", from_: str = "+14155550100") -> Call:
    return Call(call_sid=f"CA{n:032x}", account_sid=ACCOUNT, status=status, from_=from_, to=to)


def test_only_ended_children_with_a_client_party_are_admitted() -> None:
    """A forwarded phone leg and a still-ringing agent leg are not admitted; a known one
    counts as not new."""
    seen: list[Call] = []
    known = leg(4, "client:dave")

    def admit(child: Call) -> bool:
        seen.append(child)
        return child != known

    children = [leg(1, "+16505550199"), leg(2, "client:bob"), leg(3, "client:carol", "ringing"),
                known]
    assert admit_children(leg(0, "+14155550123"), children, admit) == 1
    assert seen == [leg(2, "client:bob"), known]


def test_which_legs_list_children_and_read_summaries() -> None:
    """Only a non-SDK leg lists children, once, and not when it failed; only a completed
    non-SDK leg reads its summary, and only with call_summary."""
    policy = LegPolicy(follow_children=True, summaries=True)
    phone, agent = leg(1, "+14155550123"), leg(2, "client:bob")
    assert policy.lists_children(phone, FIRST) and not policy.lists_children(phone, LISTED)
    assert not policy.lists_children(agent, FIRST)
    assert not policy.lists_children(leg(3, "+14155550123", "failed"), FIRST)
    assert not LegPolicy(follow_children=False).lists_children(phone, FIRST)
    assert policy.reads_summary(phone) and not policy.reads_summary(agent)
    assert not policy.reads_summary(leg(4, "+14155550123", "no-answer"))
    assert not LegPolicy().reads_summary(phone)
