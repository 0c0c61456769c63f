"""Call Summary tags of carrier and SIP legs become warnings (``call_summary`` edge).

Voice Insights tags a leg's gateway edge (``carrier_edge`` for the PSTN, ``sip_edge``
for SIP interfaces and trunks) with conditions that can degrade its quality. Five are
warnings: ``high_jitter``, ``high_packet_loss``, ``high_latency`` and ``high_pdd`` in
category ``network``, ``silence`` in category ``media``. Other tags make no issue. An
issue's key is ``<edge>/summary/<tag>``; ``ALERT_IGNORE=summary/<tag>`` drops one.
"""

from __future__ import annotations

from service.analysis.alert import Issue
from service.insights.summary import CallSummary

SUMMARY_GROUP = "summary"
#: tag -> (category, what it means for the people on the call)
TAGS = {
    "high_jitter": ("network", "Voice Insights measured high jitter on the {side} media: "
                               "audio may have sounded choppy or robotic"),
    "high_packet_loss": ("network", "Voice Insights measured high packet loss on the {side} "
                                    "media: words may have been clipped or lost"),
    "high_latency": ("network", "Voice Insights measured high latency on the {side} media: "
                                "the parties may have talked over each other"),
    "high_pdd": ("network", "Post-dial delay was high on the {side}: the caller waited long "
                            "before hearing the call ring"),
    "silence": ("media", "Voice Insights detected silence on the {side}: one party may not "
                         "have heard the other (one-way or no audio)"),
}
_SIDES = {"carrier_edge": "carrier (PSTN) leg", "sip_edge": "SIP leg"}


def summary_issues(summary: CallSummary, *, min_level: str = "WARNING",
                   ignore: frozenset[str] = frozenset()) -> list[Issue]:
    """One warning per known tag and edge; none when ``min_level`` is ERROR."""
    if min_level != "WARNING":
        return []
    issues = []
    for edge, tag in summary.tags:
        known = TAGS.get(tag)
        if known is None or f"{SUMMARY_GROUP}/{tag}" in ignore:
            continue
        category, text = known
        issues.append(Issue(
            key=f"{edge}/{SUMMARY_GROUP}/{tag}", edge=edge, group=SUMMARY_GROUP, name=tag,
            level="WARNING", severity="warning", count=1,
            description=text.format(side=_SIDES.get(edge, edge)), category=category))
    return issues
