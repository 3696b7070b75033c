"""The delivery checker (client-behaviour.md s.6) on synthetic runs."""

from __future__ import annotations

from scn_synthetic import Story

from scenarios.delivery import check_delivery, compare_lists

ALICE, BOB = "u-alice", "u-bob"


def stored(*rows: tuple[str, str, str | None, str]) -> dict[str, list[dict[str, str | None]]]:
    """(id, content, nonce, author) rows on alpha."""
    return {
        "alpha": [
            {"id": i, "channel_id": "c1", "content": c, "nonce": n, "author_id": a}
            for i, c, n, a in rows
        ]
    }


def sends(story: Story, *items: tuple[str, str]) -> Story:
    for t, (nonce, content) in enumerate(items):
        story.signal(float(t), "message_sending", "alpha", "c1", content, nonce)
    return story


def test_accepted_messages_are_stored_once_in_order() -> None:
    story = sends(Story(), ("n1", "one"), ("n2", "two"))
    story.post(0.1, "n1", "one", 200)
    story.post(1.1, "n2", "two", 200)
    report = check_delivery(
        story.timeline.records,
        stored(("100", "one", "n1", ALICE), ("101", "two", "n2", ALICE)),
        {"alpha": ALICE},
    )
    assert report.ok and report.delivered == 2


def test_lost_reordered_and_unexpected_are_counted() -> None:
    story = sends(Story(), ("n1", "one"), ("n2", "two"), ("n3", "three"))
    for i, n in enumerate(("n1", "n2", "n3")):
        story.post(i + 0.1, n, n, 200)
    report = check_delivery(
        story.timeline.records,
        stored(
            ("101", "one", "n1", ALICE),
            ("100", "two", "n2", ALICE),
            ("102", "ghost", "zz", ALICE),
            ("103", "bob's", None, BOB),
        ),
        {"alpha": ALICE},
    )
    counts = report.counts()
    assert (counts["lost"], counts["reordered"], counts["unexpected"]) == (1, 1, 1)
    assert not report.ok


def test_refused_must_not_be_stored_and_unknown_at_most_once() -> None:
    story = sends(Story(), ("n1", "refused"), ("n2", "unknown"))
    story.post(0.1, "n1", "refused", 403)
    req = story.post(1.1, "n2", "unknown", None)
    story.effect(2.0, "CancelHttp", req=req)  # the client's timeout
    ok = check_delivery(
        story.timeline.records, stored(("100", "unknown", "n2", ALICE)), {"alpha": ALICE}
    )
    assert ok.ok and (ok.refused, ok.unknown) == (1, 1)
    bad = check_delivery(
        story.timeline.records, stored(("100", "refused", "n1", ALICE)), {"alpha": ALICE}
    )
    assert bad.unexpected and "refused but is stored" in bad.unexpected[0]


def test_queued_at_the_end_is_pending_not_lost() -> None:
    story = Story()
    story.signal(0.0, "message_queued", "alpha", "c1", "later", "n1", 1)
    report = check_delivery(story.timeline.records, stored(), {"alpha": ALICE})
    assert report.ok and report.pending == 1


def test_a_user_deleted_message_is_not_lost() -> None:
    story = sends(Story(), ("n1", "oops"))
    story.post(0.1, "n1", "oops", 200)
    story.signal(0.2, "message_sent", "alpha", "c1", "n1", "100")
    story.signal(0.5, "message_deleted", "alpha", "100")
    assert check_delivery(story.timeline.records, stored(), {"alpha": ALICE}).ok


def test_lists_compare_from_the_oldest_loaded_message() -> None:
    assert compare_lists("alpha", "c1", ["5", "6"], ["1", "5", "6"]) == []
    assert compare_lists("alpha", "c1", ["5"], ["1", "5", "6"]) == [
        "alpha/c1: the client lacks 1 of the server's messages"
    ]
    assert compare_lists("alpha", "c1", ["5", "5", "6"], ["5", "6"])[0].endswith(
        "shows a message twice"
    )
