"""Runs without a catalog: which resources a plan selects, how coinciding rules merge,
and which state a run ends in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.catalog.types import JobState
from strongroom.config.plans import Selection
from strongroom.engine.run_summary import run_state
from strongroom.engine.runs import Firing, ScheduledRule, merge_firings
from strongroom.engine.selection import ResourceIndex, ResourceRef, plan_selections
from strongroom.errors import ConfigError

NOON = datetime(2030, 1, 1, 12, tzinfo=UTC)
RESOURCES = [
    ResourceRef(1, "orders-db", "postgres", {"BackupEnabled": "true", "Environment": "production"}),
    ResourceRef(2, "billing-db", "postgres", {"Environment": "production", "Team": "billing"}),
    ResourceRef(3, "cache", "redis", {"Environment": "production"}),
    ResourceRef(4, "scratch", "files", {"Environment": "staging"}),
    ResourceRef(5, "events", "kafka", {}),
]


def selected(*selections: dict[str, object]) -> list[str]:
    models = plan_selections("p", list(selections))
    return [resource.name for resource in ResourceIndex(RESOURCES).select(models)]


def test_names_and_list_of_tags_select_either_way_and_selections_add_up() -> None:
    assert selected({"name": "a", "names": ["events", "nope"]}) == ["events"]
    assert selected(
        {"name": "a", "list_of_tags": [{"key": "BackupEnabled", "value": "true"}]},
        {"name": "b", "list_of_tags": [{"key": "Team", "value": "billing"}]},
    ) == ["billing-db", "orders-db"]
    assert selected(
        {"name": "a", "names": ["cache"], "list_of_tags": [{"key": "Team", "value": "billing"}]}
    ) == ["billing-db", "cache"]


def test_conditions_types_and_exclusions_narrow_the_selection() -> None:
    assert selected(
        {
            "name": "a",
            "names": ["*"],
            "resource_types": ["postgres", "redis"],
            "conditions": {"string_equals": [{"key": "Environment", "value": "production"}]},
            "not_names": ["billing-db"],
        }
    ) == ["cache", "orders-db"]
    assert selected(
        {"name": "a", "conditions": {"string_not_like": [{"key": "Environment", "value": "prod*"}]}}
    ) == ["events", "scratch"]


def test_stored_selections_are_read_as_a_list_or_a_mapping_and_bad_ones_name_the_plan() -> None:
    one = {"name": "a", "names": ["cache"]}
    assert plan_selections("p", [one]) == plan_selections("p", {"selections": [one]})
    assert plan_selections("p", {}) == []
    with pytest.raises(ConfigError, match="selections of plan 'p'"):
        plan_selections("p", [{"name": "a"}])


tags = st.dictionaries(
    st.sampled_from(["Environment", "Team", "BackupEnabled"]),
    st.sampled_from(["production", "staging", "true", "billing"]),
    max_size=3,
)


@given(
    resources=st.lists(
        st.tuples(st.sampled_from(["postgres", "redis", "files"]), tags), max_size=12
    ),
    names=st.lists(st.sampled_from(["r0", "r1", "r2", "r5", "*"]), max_size=3),
    pairs=st.lists(tags.filter(bool), max_size=2),
    types=st.lists(st.sampled_from(["postgres", "redis"]), max_size=2),
    conditions=tags,
)
def test_the_index_selects_exactly_what_the_selection_model_selects(
    resources: list[tuple[str, dict[str, str]]],
    names: list[str],
    pairs: list[dict[str, str]],
    types: list[str],
    conditions: dict[str, str],
) -> None:
    refs = [
        ResourceRef(index, f"r{index}", kind, labels)
        for index, (kind, labels) in enumerate(resources)
    ]
    selection = (
        Selection.model_validate(
            {
                "name": "s",
                "names": names,
                "list_of_tags": [
                    {"key": key, "value": value} for pair in pairs for key, value in pair.items()
                ],
                "resource_types": types,
                "conditions": {
                    "string_equals": [
                        {"key": key, "value": value} for key, value in conditions.items()
                    ]
                },
            }
        )
        if (names or pairs or types or conditions)
        else Selection(name="s", names=["*"])
    )

    chosen = {ref.name for ref in ResourceIndex(refs).select([selection])}

    assert chosen == {ref.name for ref in refs if selection.selects(ref.name, ref.type, ref.tags)}


def rule(
    name: str,
    *,
    plan_id: int = 1,
    vault_id: int = 1,
    delete: int | None = None,
    cold: int | None = None,
    tags: dict[str, str] | None = None,
    start: int | None = 60,
    completion: int | None = 180,
) -> ScheduledRule:
    lifecycle = {"delete_after_days": delete, "move_to_cold_after_days": cold}
    return ScheduledRule(
        id=hash(name) % 1000,
        plan_id=plan_id,
        plan=f"plan{plan_id}",
        name=name,
        schedule="cron(0 0 * * ? *)",
        timezone="UTC",
        vault_id=vault_id,
        vault=f"vault{vault_id}",
        start_window_minutes=start,
        completion_window_minutes=completion,
        lifecycle={key: value for key, value in lifecycle.items() if value is not None},
        recovery_point_tags=tags or {},
    )


def test_rules_firing_together_merge_behind_the_one_keeping_points_longest() -> None:
    short = rule("short", delete=7, tags={"Type": "short", "Team": "a"}, start=120)
    long = rule("long", delete=90, cold=30, tags={"Type": "long"}, completion=600)
    forever = rule("forever", delete=None, vault_id=2)

    (firing_v1, firing_v2) = sorted(
        merge_firings([(short, NOON), (long, NOON), (forever, NOON)]),
        key=lambda firing: firing.lead.vault_id,
    )

    assert [r.name for r in firing_v1.rules] == ["long", "short"]
    assert firing_v1.params()["lifecycle"] == {
        "delete_after_days": 90,
        "move_to_cold_after_days": 30,
    }
    assert firing_v1.recovery_point_tags() == {"Type": "long", "Team": "a"}
    assert (firing_v1.start_by, firing_v1.complete_by) == (
        NOON + timedelta(minutes=120),
        NOON + timedelta(minutes=600),
    )
    assert [r.name for r in firing_v2.rules] == ["forever"]


def test_unset_retention_keeps_longest_and_ties_break_on_the_cold_move_then_the_name() -> None:
    keep = rule("keep", delete=None)
    warm_longer = rule("warm", delete=30, cold=20)
    cold_sooner = rule("cold", delete=30, cold=5)
    same = rule("same", delete=30, cold=5)
    (firing,) = merge_firings(
        [(same, NOON), (cold_sooner, NOON), (warm_longer, NOON), (keep, NOON)]
    )
    assert [r.name for r in firing.rules] == ["keep", "warm", "cold", "same"]


def test_rules_of_other_plans_or_other_instants_are_not_merged() -> None:
    a = rule("a", plan_id=1)
    b = rule("b", plan_id=2)
    firings = merge_firings([(a, NOON), (b, NOON), (a, NOON + timedelta(hours=1))])
    assert [(f.lead.name, f.fired_at) for f in firings] == [
        ("a", NOON),
        ("b", NOON),
        ("a", NOON + timedelta(hours=1)),
    ]
    assert Firing((rule("x", start=None, completion=None),), NOON).start_by is None


S = JobState


@pytest.mark.parametrize(
    ("states", "allow_partial", "expected"),
    [
        ([], False, S.COMPLETED),
        ([S.COMPLETED, S.COMPLETED], False, S.COMPLETED),
        ([S.COMPLETED, S.PARTIAL], True, S.PARTIAL),
        ([S.COMPLETED, S.FAILED], False, S.FAILED),
        ([S.COMPLETED, S.EXPIRED], True, S.PARTIAL),
        ([S.ABORTED, S.FAILED], True, S.FAILED),
        ([S.ABORTED], False, S.FAILED),
    ],
)
def test_a_run_ends_as_its_jobs_and_the_rules_partial_setting_say(
    states: list[JobState], allow_partial: bool, expected: JobState
) -> None:
    assert run_state(states, allow_partial=allow_partial) is expected
